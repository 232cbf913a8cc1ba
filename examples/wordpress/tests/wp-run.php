<?php
/**
 * Test helper: run PHP read from stdin inside a test WordPress, from the command line.
 *   php wp-run.php /path/to/wordpress [install] < code.php
 * With "install", WordPress loads in installing mode first (for wp_install()).
 *
 * @package supportwidget
 */

if ( 'cli' !== PHP_SAPI ) {
	exit;
}
if ( isset( $argv[2] ) && 'install' === $argv[2] ) {
	define( 'WP_INSTALLING', true );
}
require rtrim( $argv[1], '/' ) . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
eval( stream_get_contents( STDIN ) ); // phpcs:ignore Squiz.PHP.Eval -- a test helper, never shipped.
