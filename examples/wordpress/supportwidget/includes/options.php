<?php
/**
 * The plugin's settings and the addresses of the service they point at.
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/** Return the plugin's settings with defaults. */
function supportwidget_settings() {
	$defaults = array(
		'service_url' => '',
		'site_key'    => '',
		'site_secret' => '',
		'phone'       => '',
		'email'       => '',
		'roles'       => array( 'administrator', 'editor', 'shop_manager' ),
	);
	$saved    = get_option( 'supportwidget_settings', array() );
	return array_merge( $defaults, is_array( $saved ) ? $saved : array() );
}

/**
 * Tell whether the service URL and site key are set (and the secret, if asked).
 *
 * @param array $settings    Settings.
 * @param bool  $with_secret Whether the site secret is needed too.
 * @return bool
 */
function supportwidget_is_configured( $settings, $with_secret = false ) {
	return '' !== $settings['service_url'] && '' !== $settings['site_key']
		&& ( ! $with_secret || '' !== $settings['site_secret'] );
}

/**
 * Return an address on the support service.
 *
 * @param array  $settings Settings.
 * @param string $path     Path on the service, starting with a slash.
 * @return string
 */
function supportwidget_service_url( $settings, $path ) {
	return untrailingslashit( $settings['service_url'] ) . $path;
}

/**
 * Return the hosted form's address (standard or emergency), in the user's language.
 *
 * @param array $settings  Settings.
 * @param bool  $emergency The emergency form.
 * @return string
 */
function supportwidget_form_url( $settings, $emergency = false ) {
	$path = '/s/' . rawurlencode( $settings['site_key'] ) . ( $emergency ? '/emergency' : '' );
	return add_query_arg( 'locale', rawurlencode( get_user_locale() ), supportwidget_service_url( $settings, $path ) );
}

/** Tell whether the current user should see the button. */
function supportwidget_user_may_see() {
	$user = wp_get_current_user();
	if ( ! $user || ! $user->exists() ) {
		return false;
	}
	$settings = supportwidget_settings();
	return (bool) array_intersect( (array) $user->roles, (array) $settings['roles'] );
}

/** Tell whether the widget is configured and this request should load it. */
function supportwidget_should_load() {
	// Never inside wp-admin's own iframes (customizer, plugin details, media modals).
	if ( defined( 'IFRAME_REQUEST' ) && IFRAME_REQUEST ) {
		return false;
	}
	return supportwidget_is_configured( supportwidget_settings() ) && supportwidget_user_may_see();
}
