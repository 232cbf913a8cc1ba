<?php
/**
 * Settings page: service URL, site key, site secret, the agency's direct contacts and the
 * roles that see the button; the emergency link to bookmark; "Test connection".
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/** Register the settings with their validation. */
function supportwidget_register_settings() {
	register_setting(
		'supportwidget',
		'supportwidget_settings',
		array(
			'type'              => 'array',
			'sanitize_callback' => 'supportwidget_sanitize_settings',
		)
	);
}
add_action( 'admin_init', 'supportwidget_register_settings' );

/**
 * Validate submitted settings; a refused value keeps the saved one and says why.
 *
 * @param array $input Submitted settings.
 * @return array
 */
function supportwidget_sanitize_settings( $input ) {
	// WordPress cleans a new option twice, the second time our own result: check (and ask
	// the service) once per value.
	static $done = array();
	$input = is_array( $input ) ? $input : array();
	$key   = md5( (string) wp_json_encode( $input ) );
	if ( isset( $done[ $key ] ) ) {
		return $done[ $key ];
	}
	$saved = supportwidget_settings();
	$clean = array(
		'service_url' => supportwidget_valid_service_url( supportwidget_input( $input, 'service_url' ), $saved['service_url'] ),
		'site_key'    => supportwidget_valid( 'site_key', supportwidget_input( $input, 'site_key' ), $saved['site_key'], '/^[A-Za-z0-9_-]{8,64}$/', __( 'The site key is the data-site-key of the embed snippet your agency gave you (letters, digits, - and _).', 'supportwidget' ) ),
		// An empty field keeps the saved secret: the page never shows it.
		'site_secret' => '' === supportwidget_input( $input, 'site_secret' ) ? $saved['site_secret']
			: supportwidget_valid( 'site_secret', supportwidget_input( $input, 'site_secret' ), $saved['site_secret'], '/^[A-Za-z0-9_-]{16,128}$/', __( 'The site secret is the long code your agency gave you for signed identity (letters and digits).', 'supportwidget' ) ),
		'phone'       => supportwidget_valid( 'phone', supportwidget_input( $input, 'phone' ), $saved['phone'], '/^\+?[0-9 ().\/-]{3,30}$/', __( 'The phone number may hold digits, spaces, + ( ) . / and - only.', 'supportwidget' ) ),
		'email'       => supportwidget_valid_email( supportwidget_input( $input, 'email' ), $saved['email'] ),
		'roles'       => array_values( array_intersect( array_map( 'sanitize_key', (array) ( isset( $input['roles'] ) ? $input['roles'] : array() ) ), array_keys( wp_roles()->get_names() ) ) ),
	);
	$clean = supportwidget_checked_connection( $clean, $saved );
	$done[ $key ] = $clean;
	$done[ md5( (string) wp_json_encode( $clean ) ) ] = $clean;
	return $clean;
}

/**
 * Return one submitted text field, trimmed.
 *
 * @param array  $input Submitted settings.
 * @param string $key   Field.
 * @return string
 */
function supportwidget_input( $input, $key ) {
	return isset( $input[ $key ] ) && is_string( $input[ $key ] ) ? trim( $input[ $key ] ) : '';
}

/**
 * Return a submitted value if empty or matching a pattern; else the saved one, with an error.
 *
 * @param string $key     Field.
 * @param string $value   Submitted value.
 * @param string $saved   Saved value.
 * @param string $pattern What a valid value looks like.
 * @param string $message Why a value was refused.
 * @return string
 */
function supportwidget_valid( $key, $value, $saved, $pattern, $message ) {
	if ( '' === $value || preg_match( $pattern, $value ) ) {
		return $value;
	}
	add_settings_error( 'supportwidget_settings', 'supportwidget-' . $key, $message, 'error' );
	return $saved;
}

/**
 * Return a valid agency e-mail address, or the saved one with an error.
 *
 * @param string $value Submitted address.
 * @param string $saved Saved address.
 * @return string
 */
function supportwidget_valid_email( $value, $saved ) {
	if ( '' === $value || is_email( $value ) ) {
		return $value;
	}
	add_settings_error( 'supportwidget_settings', 'supportwidget-email', __( 'The agency e-mail address is not valid.', 'supportwidget' ), 'error' );
	return $saved;
}

/**
 * Return the service's base address (http or https, without /widget.js), or the saved one.
 *
 * @param string $value Submitted address.
 * @param string $saved Saved address.
 * @return string
 */
function supportwidget_valid_service_url( $value, $saved ) {
	if ( '' === $value ) {
		return '';
	}
	$parts = wp_parse_url( $value );
	$error = '';
	if ( ! is_array( $parts ) || ! isset( $parts['scheme'], $parts['host'] ) || ! in_array( strtolower( $parts['scheme'] ), array( 'http', 'https' ), true ) ) {
		$error = __( 'The service URL must be a web address starting with https:// (for example https://support.example-agency.com).', 'supportwidget' );
	} elseif ( preg_match( '#/widget\.js$#i', isset( $parts['path'] ) ? $parts['path'] : '' ) ) {
		$error = __( 'Enter the service URL without /widget.js: the address the widget is loaded from (for example https://support.example-agency.com).', 'supportwidget' );
	} elseif ( isset( $parts['query'] ) || isset( $parts['fragment'] ) || isset( $parts['user'] ) ) {
		$error = __( 'The service URL cannot hold a query (?…), a fragment (#…) or a user name.', 'supportwidget' );
	}
	if ( '' !== $error ) {
		add_settings_error( 'supportwidget_settings', 'supportwidget-service_url', $error, 'error' );
		return $saved;
	}
	return untrailingslashit( esc_url_raw( $value, array( 'http', 'https' ) ) );
}

/**
 * Check changed connection settings against the service before they replace the saved ones.
 *
 * The service says whether it knows the key and whether the secret signs for it; when it
 * refuses them, the saved URL, key and secret stay. When it cannot be reached the new
 * settings are kept, with a warning: the service may be down for a while.
 *
 * @param array $clean Validated settings.
 * @param array $saved Saved settings.
 * @return array The settings to save.
 */
function supportwidget_checked_connection( $clean, $saved ) {
	$fields  = array( 'service_url', 'site_key', 'site_secret' );
	$changed = array_intersect_key( $clean, array_flip( $fields ) ) !== array_intersect_key( $saved, array_flip( $fields ) );
	if ( ! $changed || ! supportwidget_is_configured( $clean, true ) ) {
		return $clean;
	}
	$result = supportwidget_test_connection( $clean, 5 );
	supportwidget_remember( 'test', $result );
	if ( ! is_wp_error( $result ) ) {
		add_settings_error( 'supportwidget_settings', 'supportwidget-verified', __( 'Settings saved.', 'supportwidget' ) . ' ' . $result, 'success' );
		return $clean;
	}
	if ( 'unreachable' === $result->get_error_code() ) {
		/* translators: %s: why the service could not be reached. */
		add_settings_error( 'supportwidget_settings', 'supportwidget-unreachable', sprintf( __( 'Saved, but not checked: %s', 'supportwidget' ), $result->get_error_message() ), 'warning' );
		return $clean;
	}
	/* translators: %s: why the service refused the settings. */
	add_settings_error( 'supportwidget_settings', 'supportwidget-refused', sprintf( __( 'The service URL, site key and site secret were not changed: %s', 'supportwidget' ), $result->get_error_message() ), 'error' );
	return array_merge( $clean, array_intersect_key( $saved, array_flip( $fields ) ) );
}

/**
 * Keep the outcome of the last connection test or heartbeat for the settings page.
 *
 * @param string          $what   "test" or "heartbeat".
 * @param string|WP_Error $result What was verified, or why it failed.
 */
function supportwidget_remember( $what, $result ) {
	$status          = get_option( 'supportwidget_status', array() );
	$status          = is_array( $status ) ? $status : array();
	$status[ $what ] = array(
		'time'    => time(),
		'ok'      => ! is_wp_error( $result ),
		'message' => is_wp_error( $result ) ? $result->get_error_message() : $result,
	);
	update_option( 'supportwidget_status', $status, false );
}

/** Add the settings page under Settings. */
function supportwidget_add_settings_page() {
	add_options_page(
		__( 'Support widget', 'supportwidget' ),
		__( 'Support widget', 'supportwidget' ),
		'manage_options',
		'supportwidget',
		'supportwidget_render_settings'
	);
}
add_action( 'admin_menu', 'supportwidget_add_settings_page' );

/**
 * Put a Settings link first on the plugin's row of the Plugins page.
 *
 * @param string[] $links The row's action links.
 * @return string[]
 */
function supportwidget_action_links( $links ) {
	$url = admin_url( 'options-general.php?page=supportwidget' );
	array_unshift( $links, '<a href="' . esc_url( $url ) . '">' . esc_html__( 'Settings', 'supportwidget' ) . '</a>' );
	return $links;
}
add_filter( 'plugin_action_links_' . plugin_basename( SUPPORTWIDGET_FILE ), 'supportwidget_action_links' );

/** Check the saved settings against the service ("Test connection"), then show the page again. */
function supportwidget_handle_test() {
	if ( ! current_user_can( 'manage_options' ) ) {
		wp_die( esc_html__( 'Sorry, you are not allowed to test the support connection.', 'supportwidget' ), 403 );
	}
	check_admin_referer( 'supportwidget-test' );
	$settings = supportwidget_settings();
	$result   = supportwidget_is_configured( $settings, true ) ? supportwidget_test_connection( $settings )
		: new WP_Error( 'incomplete', __( 'Enter and save the service URL, site key and site secret first.', 'supportwidget' ) );
	supportwidget_remember( 'test', $result );
	wp_safe_redirect( admin_url( 'options-general.php?page=supportwidget&supportwidget-tested=1' ) );
	exit;
}
add_action( 'admin_post_supportwidget_test', 'supportwidget_handle_test' );

/**
 * Print one remembered outcome ("test" or "heartbeat") as a line of the settings page.
 *
 * @param array  $status What supportwidget_remember() kept.
 * @param string $what   "test" or "heartbeat".
 */
function supportwidget_print_outcome( $status, $what ) {
	if ( empty( $status[ $what ] ) ) {
		return;
	}
	$outcome = $status[ $what ];
	$labels  = array(
		'test'      => __( 'Last connection test', 'supportwidget' ),
		'heartbeat' => __( 'Last heartbeat', 'supportwidget' ),
	);
	$when    = wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), $outcome['time'] );
	printf(
		'<p class="supportwidget-outcome %1$s" id="supportwidget-last-%2$s"><strong>%3$s</strong> (%4$s): %5$s</p>',
		$outcome['ok'] ? 'supportwidget-ok' : 'supportwidget-failed',
		esc_attr( $what ),
		esc_html( $labels[ $what ] ),
		esc_html( $when ),
		esc_html( $outcome['message'] )
	);
}

/** Render the settings page. */
function supportwidget_render_settings() {
	if ( ! current_user_can( 'manage_options' ) ) {
		return;
	}
	$settings = supportwidget_settings();
	$status   = get_option( 'supportwidget_status', array() );
	require __DIR__ . '/settings-page.php';
}
