<?php
/**
 * Deleting the plugin removes everything it stored: its settings (the site secret among
 * them), the outcome of its last checks, its cached checksums, and its scheduled heartbeat.
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) || ! defined( 'WP_UNINSTALL_PLUGIN' ) ) {
	exit;
}

/** Remove the plugin's options and heartbeat from the current site. */
function supportwidget_uninstall_site() {
	delete_option( 'supportwidget_settings' );
	delete_option( 'supportwidget_status' );
	delete_transient( 'supportwidget_core_checksums' );
	wp_clear_scheduled_hook( 'supportwidget_heartbeat' );
}

if ( is_multisite() ) {
	foreach ( get_sites( array( 'fields' => 'ids' ) ) as $supportwidget_site ) {
		switch_to_blog( $supportwidget_site );
		supportwidget_uninstall_site();
		restore_current_blog();
	}
} else {
	supportwidget_uninstall_site();
}
