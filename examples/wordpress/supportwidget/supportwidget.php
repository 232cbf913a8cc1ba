<?php
/**
 * Plugin Name:       Supportwidget
 * Plugin URI:        https://github.com/supportwidget/supportwidget
 * Description:       Adds your agency's "Create a ticket?" button to wp-admin with the signed-in user's identity, keeps the emergency form and the agency's phone within reach when support cannot be reached, and reports the site's health to the agency.
 * Version:           0.2.0
 * Requires at least: 6.1
 * Requires PHP:      7.4
 * Author:            Your web agency
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       supportwidget
 * Domain Path:       /languages
 * Update URI:        false
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}
// Guard against double loading (a copy in mu-plugins and one in plugins, say).
if ( defined( 'SUPPORTWIDGET_VERSION' ) ) {
	return;
}
define( 'SUPPORTWIDGET_VERSION', '0.2.0' );
define( 'SUPPORTWIDGET_FILE', __FILE__ );

require_once __DIR__ . '/includes/signature.php';
require_once __DIR__ . '/includes/options.php';
require_once __DIR__ . '/includes/service.php';
require_once __DIR__ . '/includes/embed.php';
require_once __DIR__ . '/includes/heartbeat.php';
require_once __DIR__ . '/includes/settings.php';
require_once __DIR__ . '/includes/privacy.php';

/** Load the plugin's translations (the user's language in wp-admin). */
function supportwidget_load_textdomain() {
	load_plugin_textdomain( 'supportwidget', false, dirname( plugin_basename( __FILE__ ) ) . '/languages' );
}
add_action( 'init', 'supportwidget_load_textdomain' );

/**
 * Switch the plugin's own strings to a language, if they are not in it already.
 *
 * Unlike switch_to_locale(), this needs no WordPress translation of that language and
 * reloads only this plugin's strings.
 *
 * @param string $locale A locale such as fr_FR.
 * @return bool Whether the strings were switched.
 */
function supportwidget_speak( $locale ) {
	static $speaking = null; // Until switched, the strings are in WordPress's language.
	if ( ( null === $speaking ? determine_locale() : $speaking ) === $locale ) {
		return false;
	}
	unload_textdomain( 'supportwidget' );
	$file = 'supportwidget-' . $locale . '.mo';
	if ( ! load_textdomain( 'supportwidget', WP_LANG_DIR . '/plugins/' . $file ) ) {
		load_textdomain( 'supportwidget', __DIR__ . '/languages/' . $file );
	}
	$speaking = $locale;
	return true;
}
