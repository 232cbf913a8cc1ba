<?php
/**
 * The widget in wp-admin: the script tag (async, never holding up the page), the admin-bar
 * item with its links, and the fallback shown when the support service does not answer.
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Return an attribute value that a browser reads back exactly as given.
 *
 * Not esc_attr(): it leaves existing entities alone, so a name holding "&amp;" would reach
 * the browser as "&" while the signature covered "&amp;".
 *
 * @param string $value Plain text.
 * @return string
 */
function supportwidget_attribute_value( $value ) {
	return htmlspecialchars( (string) $value, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8', true );
}

/** Return the data-* attributes of the embed for the current user. */
function supportwidget_attributes() {
	global $wp_version;
	$settings   = supportwidget_settings();
	$user       = wp_get_current_user();
	$name       = supportwidget_sent_name( $user->display_name );
	$email      = trim( $user->user_email );
	$theme      = wp_get_theme();
	$attributes = array(
		'data-site-key'   => $settings['site_key'],
		'data-user-name'  => $name,
		'data-user-email' => $email,
		'data-locale'     => get_user_locale(),
		'data-context'    => wp_json_encode(
			array(
				'cms'   => 'WordPress ' . $wp_version,
				'php'   => PHP_VERSION,
				'theme' => $theme->get( 'Name' ) . ' ' . $theme->get( 'Version' ),
				'site'  => home_url(),
			)
		),
	);
	// Shown by the widget when the support service cannot be reached.
	foreach ( array( 'phone', 'email' ) as $contact ) {
		if ( '' !== $settings[ $contact ] ) {
			$attributes[ 'data-' . $contact ] = $settings[ $contact ];
		}
	}
	if ( '' !== $settings['site_secret'] ) {
		$attributes['data-user-signature'] = supportwidget_signature(
			$settings['site_secret'],
			$settings['site_key'],
			$email,
			$name,
			time()
		);
	}
	return $attributes;
}

/** Enqueue the widget (async, in the footer) and the small script that backs it up. */
function supportwidget_enqueue() {
	if ( ! supportwidget_should_load() || wp_script_is( 'supportwidget', 'enqueued' ) ) {
		return;
	}
	$settings = supportwidget_settings();
	wp_enqueue_style( 'supportwidget-admin', plugins_url( 'assets/admin.css', SUPPORTWIDGET_FILE ), array(), SUPPORTWIDGET_VERSION );
	// In the head, not async: the command queue must exist before the widget runs.
	wp_enqueue_script( 'supportwidget-admin', plugins_url( 'assets/admin.js', SUPPORTWIDGET_FILE ), array(), SUPPORTWIDGET_VERSION, false );
	wp_enqueue_script(
		'supportwidget',
		supportwidget_service_url( $settings, '/widget.js' ),
		array(),
		null, // phpcs:ignore WordPress.WP.EnqueuedResourceParameters.MissingVersion -- the service versions it.
		array(
			'in_footer' => true,
			'strategy'  => 'async', // WordPress 6.3 and later; older ones get it from the tag filter.
		)
	);
}
add_action( 'admin_enqueue_scripts', 'supportwidget_enqueue' );

/**
 * Add the user's signed identity to the widget's tag, and make sure it is async.
 *
 * Async, never defer: a deferred script holds DOMContentLoaded, so a support service that
 * accepts connections and never answers would stop every wp-admin script.
 *
 * @param string $tag    The script tag.
 * @param string $handle The script's handle.
 * @return string
 */
function supportwidget_script_tag( $tag, $handle ) {
	if ( 'supportwidget' !== $handle ) {
		return $tag;
	}
	$extra = '';
	foreach ( supportwidget_attributes() as $name => $value ) {
		$extra .= ' ' . $name . '="' . supportwidget_attribute_value( $value ) . '"';
	}
	if ( ! preg_match( '/\sasync[\s=>]/', $tag ) ) {
		$extra .= ' async';
	}
	return preg_replace( '/<script(?=[\s>])/', '<script' . $extra, $tag, 1 );
}
add_filter( 'script_loader_tag', 'supportwidget_script_tag', 10, 2 );

/**
 * Add "Create a ticket?" to the admin bar, with the emergency form and the agency's contacts.
 *
 * A real link to the hosted form: assets/admin.js opens the widget's dialog instead when the
 * widget is loaded. Everyone who sees it also sees the emergency link (editors too).
 *
 * @param WP_Admin_Bar $admin_bar The admin bar.
 */
function supportwidget_admin_bar( $admin_bar ) {
	$settings = supportwidget_settings();
	if ( ! supportwidget_is_configured( $settings ) || ! supportwidget_user_may_see() ) {
		return;
	}
	// On the front end WordPress speaks the site's language; the admin bar is the user's.
	$switched = supportwidget_speak( get_user_locale() );
	$external = array(
		'target' => '_blank',
		'rel'    => 'noopener',
	);
	$admin_bar->add_node(
		array(
			'id'    => 'supportwidget',
			'title' => esc_html__( 'Create a ticket?', 'supportwidget' ),
			'href'  => supportwidget_form_url( $settings ),
			'meta'  => $external,
		)
	);
	foreach ( supportwidget_contacts( $settings ) as $id => $contact ) {
		$admin_bar->add_node(
			array(
				'parent' => 'supportwidget',
				'id'     => 'supportwidget-' . $id,
				'title'  => esc_html( $contact['label'] ),
				'href'   => $contact['href'],
				'meta'   => 'emergency' === $id ? $external : array(),
			)
		);
	}
	if ( $switched ) {
		supportwidget_speak( determine_locale() );
	}
}
add_action( 'admin_bar_menu', 'supportwidget_admin_bar', 90 );

/**
 * Return the ways to reach the agency besides the widget: emergency form, phone, e-mail.
 *
 * @param array $settings Settings.
 * @return array[] Each with a label and an href, keyed emergency, phone, email.
 */
function supportwidget_contacts( $settings ) {
	$contacts = array(
		'emergency' => array(
			'label' => __( 'Emergency: site down or hacked', 'supportwidget' ),
			'href'  => supportwidget_form_url( $settings, true ),
		),
	);
	if ( '' !== $settings['phone'] ) {
		$contacts['phone'] = array(
			/* translators: %s: the agency's phone number. */
			'label' => sprintf( __( 'Call %s', 'supportwidget' ), $settings['phone'] ),
			'href'  => 'tel:' . preg_replace( '/[^0-9+]/', '', $settings['phone'] ),
		);
	}
	if ( '' !== $settings['email'] ) {
		$contacts['email'] = array(
			/* translators: %s: the agency's e-mail address. */
			'label' => sprintf( __( 'E-mail %s', 'supportwidget' ), $settings['email'] ),
			'href'  => 'mailto:' . $settings['email'],
		);
	}
	return $contacts;
}

/** Print the fallback, hidden until assets/admin.js finds that the widget could not load. */
function supportwidget_fallback() {
	if ( ! supportwidget_should_load() ) {
		return;
	}
	$settings = supportwidget_settings();
	?>
	<div id="supportwidget-fallback" class="supportwidget-fallback" role="region" aria-labelledby="supportwidget-fallback-title" hidden>
		<button type="button" class="supportwidget-fallback-close" aria-label="<?php esc_attr_e( 'Close', 'supportwidget' ); ?>">&times;</button>
		<p id="supportwidget-fallback-title"><strong><?php esc_html_e( 'Support cannot be reached from here right now.', 'supportwidget' ); ?></strong></p>
		<ul>
			<li><a href="<?php echo esc_url( supportwidget_form_url( $settings ) ); ?>" target="_blank" rel="noopener"><?php esc_html_e( 'Open the support form in a new tab', 'supportwidget' ); ?></a></li>
			<?php foreach ( supportwidget_contacts( $settings ) as $id => $contact ) : ?>
				<li class="supportwidget-<?php echo esc_attr( $id ); ?>"><a href="<?php echo esc_url( $contact['href'], array( 'http', 'https', 'tel', 'mailto' ) ); ?>"<?php echo 'emergency' === $id ? ' target="_blank" rel="noopener"' : ''; ?>><?php echo esc_html( $contact['label'] ); ?></a></li>
			<?php endforeach; ?>
		</ul>
	</div>
	<?php
}
add_action( 'admin_footer', 'supportwidget_fallback' );
