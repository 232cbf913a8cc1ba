<?php
/**
 * Check the plugin's signatures against the vectors the Python service is tested with.
 * Run: php examples/wordpress/tests/signature-test.php  (exit status 0 when every vector matches)
 *
 * @package supportwidget
 */

define( 'ABSPATH', __DIR__ . '/' ); // The plugin's files load only inside WordPress.
require __DIR__ . '/../supportwidget/includes/signature.php';

$data   = json_decode( file_get_contents( __DIR__ . '/vectors.json' ), true );
$failed = 0;
$total  = 0;

/**
 * Count one check; report it on failure.
 *
 * @param string $what     What was checked.
 * @param string $expected Expected value.
 * @param string $got      Actual value.
 */
function supportwidget_check( $what, $expected, $got ) {
	global $failed, $total;
	++$total;
	if ( $expected !== $got ) {
		++$failed;
		fwrite( STDERR, "$what: expected " . json_encode( $expected ) . ', got ' . json_encode( $got ) . "\n" );
	}
}

foreach ( $data['vectors'] as $i => $v ) {
	$got = supportwidget_signature( $v['secret'], $v['site_key'], $v['email'], $v['name'], $v['timestamp'] );
	supportwidget_check( "vector $i signature", $v['signature'], $got );
	if ( isset( $v['display_name'] ) ) {
		supportwidget_check( "vector $i sent name", $v['name'], supportwidget_sent_name( $v['display_name'] ) );
	}
}
$beat = $data['heartbeat'];
supportwidget_check( 'heartbeat', $beat['signature'], supportwidget_heartbeat_signature( $beat['secret'], $beat['timestamp'], $beat['body'] ) );

echo ( $total - $failed ) . ' passed, ' . $failed . " failed\n";
exit( $failed ? 1 : 0 );
