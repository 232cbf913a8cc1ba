<?php
/**
 * Check supportwidget_signature() against the vectors the Python service is tested with.
 * Run: php tests/signature-test.php  (exit status 0 when every vector matches)
 *
 * @package supportwidget
 */

require __DIR__ . '/../includes/signature.php';

$data   = json_decode( file_get_contents( __DIR__ . '/vectors.json' ), true );
$failed = 0;
foreach ( $data['vectors'] as $i => $v ) {
	$got = supportwidget_signature( $v['secret'], $v['site_key'], $v['email'], $v['name'], $v['timestamp'] );
	if ( $got !== $v['signature'] ) {
		++$failed;
		fwrite( STDERR, "vector $i: expected {$v['signature']}, got $got\n" );
	}
}
echo count( $data['vectors'] ) - $failed . ' passed, ' . $failed . " failed\n";
exit( $failed ? 1 : 0 );
