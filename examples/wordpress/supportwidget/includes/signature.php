<?php
/**
 * Signatures in the formats the supportwidget service verifies (shared test vectors:
 * examples/wordpress/tests/vectors.json in the supportwidget repository).
 *
 * Signed identity: "<unix time>.<hex HMAC-SHA256>" with the site secret over the lines
 * site key, lower-cased e-mail, name, unix time. Heartbeat: "<unix time>.<hex HMAC-SHA256>"
 * with the site secret over the unix time, a line feed and the request body.
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Return a display name as the plugin sends it, so the signature covers what is sent.
 *
 * WordPress stores display names with HTML special characters encoded ("Tom &amp; Jerry"),
 * and a browser reading the attribute gets them decoded: the name sent and signed is the
 * decoded one, without the control characters the service refuses in a one-line field.
 *
 * @param string $stored Display name as WordPress stores it.
 * @return string
 */
function supportwidget_sent_name( $stored ) {
	$name = html_entity_decode( (string) $stored, ENT_QUOTES | ENT_HTML5, 'UTF-8' );
	$name = preg_replace( '/[\x{0}-\x{1F}\x{7F}-\x{9F}\x{2028}\x{2029}]/u', '', $name );
	return trim( (string) $name );
}

/**
 * Sign the current user's identity for the widget.
 *
 * @param string $secret    Site secret from the supportwidget service.
 * @param string $site_key  Public site key.
 * @param string $email     User e-mail, as sent.
 * @param string $name      User name, as sent (see supportwidget_sent_name()).
 * @param int    $timestamp Unix time of signing.
 * @return string
 */
function supportwidget_signature( $secret, $site_key, $email, $name, $timestamp ) {
	// ASCII case folding only: the same on every PHP version and locale, and in Python.
	$email   = strtr( trim( $email ), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz' );
	$message = implode( "\n", array( $site_key, $email, trim( $name ), (string) $timestamp ) );
	return $timestamp . '.' . hash_hmac( 'sha256', $message, $secret );
}

/**
 * Sign a heartbeat body for the X-Supportwidget-Signature header.
 *
 * @param string $secret    Site secret.
 * @param int    $timestamp Unix time of signing.
 * @param string $body      The exact request body.
 * @return string
 */
function supportwidget_heartbeat_signature( $secret, $timestamp, $body ) {
	return $timestamp . '.' . hash_hmac( 'sha256', $timestamp . "\n" . $body, $secret );
}
