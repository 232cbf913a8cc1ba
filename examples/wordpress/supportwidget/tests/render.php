<?php
/**
 * Render what the plugin adds to a wp-admin page, as JSON, for the Python tests.
 *
 * @package supportwidget
 */

require __DIR__ . '/wp-stub.php';
require __DIR__ . '/../supportwidget.php';

do_action( 'admin_enqueue_scripts' );
do_action( 'admin_enqueue_scripts' ); // A second call must not load it twice.
$bar = new SW_Admin_Bar();
do_action( 'admin_bar_menu', $bar );
$tags = array();
foreach ( $GLOBALS['sw_scripts'] as $handle => $script ) {
	$tag    = '<script src="' . esc_attr( $script['src'] ) . '" id="' . $handle . '-js" defer data-wp-strategy="' . $script['args']['strategy'] . '"></script>';
	$tags[] = apply_filters( 'script_loader_tag', $tag, $handle, $script['src'] );
}
echo json_encode( array( 'scripts' => $tags, 'admin_bar' => $bar->nodes ) );
