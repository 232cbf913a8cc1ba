<?php
/**
 * Plugin Name:       Supportwidget
 * Plugin URI:        https://github.com/supportwidget/supportwidget
 * Description:       Adds your agency's "Create a ticket?" button to wp-admin, with the signed-in user's identity, and links the emergency form.
 * Version:           0.1.0
 * Requires at least: 6.3
 * Requires PHP:      7.4
 * Author:            Your web agency
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}
// Guard against double loading (a copy in mu-plugins and one in plugins, say).
if ( defined( 'SUPPORTWIDGET_VERSION' ) ) {
	return;
}
define( 'SUPPORTWIDGET_VERSION', '0.1.0' );

require_once __DIR__ . '/includes/signature.php';

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
	$saved = get_option( 'supportwidget_settings', array() );
	return array_merge( $defaults, is_array( $saved ) ? $saved : array() );
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
	$settings = supportwidget_settings();
	// Never inside wp-admin's own iframes (customizer previews, theme installer, media modals).
	if ( defined( 'IFRAME_REQUEST' ) && IFRAME_REQUEST ) {
		return false;
	}
	return '' !== $settings['service_url'] && '' !== $settings['site_key'] && supportwidget_user_may_see();
}

/** Return the data-* attributes of the embed for the current user. */
function supportwidget_attributes() {
	$settings = supportwidget_settings();
	$user     = wp_get_current_user();
	$theme    = wp_get_theme();
	$context  = array(
		'cms'   => 'WordPress ' . get_bloginfo( 'version' ),
		'php'   => PHP_VERSION,
		'theme' => $theme->get( 'Name' ) . ' ' . $theme->get( 'Version' ),
		'site'  => home_url(),
	);
	$attributes = array(
		'data-site-key'   => $settings['site_key'],
		'data-user-name'  => $user->display_name,
		'data-user-email' => $user->user_email,
		'data-locale'     => get_user_locale(),
		'data-context'    => wp_json_encode( $context ),
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
			$user->user_email,
			$user->display_name,
			time()
		);
	}
	return $attributes;
}

add_action(
	'admin_enqueue_scripts',
	function () {
		if ( ! supportwidget_should_load() || wp_script_is( 'supportwidget', 'enqueued' ) ) {
			return;
		}
		$settings = supportwidget_settings();
		wp_enqueue_script(
			'supportwidget',
			untrailingslashit( $settings['service_url'] ) . '/widget.js',
			array(),
			null,
			array(
				'strategy'  => 'defer',
				'in_footer' => true,
			)
		);
	}
);

add_filter(
	'script_loader_tag',
	function ( $tag, $handle ) {
		if ( 'supportwidget' !== $handle ) {
			return $tag;
		}
		$extra = '';
		foreach ( supportwidget_attributes() as $name => $value ) {
			$extra .= ' ' . $name . '="' . esc_attr( $value ) . '"';
		}
		return str_replace( '<script ', '<script' . $extra . ' ', $tag );
	},
	10,
	2
);

add_action(
	'admin_bar_menu',
	function ( $admin_bar ) {
		if ( ! supportwidget_should_load() ) {
			return;
		}
		$admin_bar->add_node(
			array(
				'id'    => 'supportwidget',
				'title' => esc_html__( 'Create a ticket?', 'supportwidget' ),
				'href'  => '#supportwidget',
				'meta'  => array( 'class' => 'supportwidget-open' ),
			)
		);
	},
	90
);

require_once __DIR__ . '/includes/settings.php';
