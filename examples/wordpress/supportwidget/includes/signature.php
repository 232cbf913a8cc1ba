<?php
/**
 * The signed identity, in the format the supportwidget service verifies:
 * "<unix timestamp>.<hex HMAC-SHA256>" with the site secret over the lines
 * site key, lower-cased e-mail, name, timestamp. Shared test vectors: tests/vectors.json.
 *
 * @package supportwidget
 */

if ( ! function_exists( 'supportwidget_signature' ) ) {
	/**
	 * Sign the current user's identity for the widget.
	 *
	 * @param string $secret    Site secret from the supportwidget service.
	 * @param string $site_key  Public site key.
	 * @param string $email     User e-mail.
	 * @param string $name      User display name.
	 * @param int    $timestamp Unix time of signing.
	 * @return string
	 */
	function supportwidget_signature( $secret, $site_key, $email, $name, $timestamp ) {
		$message = implode( "\n", array( $site_key, strtolower( trim( $email ) ), trim( $name ), (string) $timestamp ) );
		return $timestamp . '.' . hash_hmac( 'sha256', $message, $secret );
	}
}
