<?php
/**
 * Suggested text for the site's privacy policy (Settings → Privacy → Policy Guide).
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/** Tell the privacy policy guide what the plugin sends to the agency's support service. */
function supportwidget_privacy_policy() {
	if ( ! function_exists( 'wp_add_privacy_policy_content' ) ) {
		return;
	}
	$paragraphs = array(
		__( 'This site uses a support service run by the agency that looks after it. Only signed-in users whose role may see the "Create a ticket?" button load it, in the site\'s dashboard; visitors are never sent to it.', 'supportwidget' ),
		__( 'For those users the support widget receives their display name and e-mail address (signed, so the agency knows the request comes from this site), their language, and the address and title of the dashboard page they were on, with their browser\'s user agent and window size. A request they file also holds what they type and any screenshots they attach. The agency keeps requests to answer them.', 'supportwidget' ),
		__( 'Every five minutes the site itself sends the agency its WordPress, PHP and theme versions, its active plugins, and the result of comparing its WordPress core files with the checksums WordPress.org publishes. This holds no personal data.', 'supportwidget' ),
	);
	wp_add_privacy_policy_content( 'Supportwidget', wp_kses_post( '<p>' . implode( '</p><p>', array_map( 'esc_html', $paragraphs ) ) . '</p>' ) );
}
add_action( 'admin_init', 'supportwidget_privacy_policy' );
