<?php
/**
 * Talking to the support service from the server: the signed POST /api/v1/heartbeat that
 * carries both the heartbeat and the settings page's connection test.
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * POST a signed JSON body to the service's heartbeat endpoint.
 *
 * @param array $settings Settings (service URL, site key, site secret).
 * @param array $payload  The JSON body, without the site key.
 * @param int   $timeout  Seconds to wait for the whole answer.
 * @return array|WP_Error The service's answer, or why it failed, in words an admin can act on.
 */
function supportwidget_post_heartbeat( $settings, $payload, $timeout = 10 ) {
	$url      = supportwidget_service_url( $settings, '/api/v1/heartbeat' );
	// A random nonce: two heartbeats signed in the same second still differ (each is good once).
	$body     = wp_json_encode(
		array_merge(
			array(
				'site_key' => $settings['site_key'],
				'nonce'    => bin2hex( random_bytes( 8 ) ),
			),
			$payload
		)
	);
	$response = wp_remote_post(
		$url,
		array(
			'timeout'     => $timeout,
			'redirection' => 0,
			'headers'     => array(
				'Content-Type'              => 'application/json',
				'X-Supportwidget-Signature' => supportwidget_heartbeat_signature( $settings['site_secret'], time(), $body ),
			),
			'body'        => $body,
		)
	);
	if ( is_wp_error( $response ) ) {
		return new WP_Error(
			'unreachable',
			/* translators: 1: the service's address, 2: the network error. */
			sprintf( __( 'The support service at %1$s could not be reached: %2$s', 'supportwidget' ), $url, $response->get_error_message() )
		);
	}
	$answer = json_decode( wp_remote_retrieve_body( $response ), true );
	if ( 200 === wp_remote_retrieve_response_code( $response ) && is_array( $answer ) && ! empty( $answer['ok'] ) ) {
		return $answer;
	}
	return supportwidget_refusal( wp_remote_retrieve_response_code( $response ), is_array( $answer ) ? $answer : array() );
}

/**
 * Explain why the service refused a heartbeat.
 *
 * @param int   $status HTTP status.
 * @param array $answer The service's JSON error, if any ("reason", "message").
 * @return WP_Error
 */
function supportwidget_refusal( $status, $answer ) {
	$reasons = array(
		'unknown_key'   => __( 'The support service does not know this site key. Copy it from the embed snippet your agency gave you.', 'supportwidget' ),
		'bad_signature' => __( 'The site secret is wrong. Copy it again from your agency (it is not the site key).', 'supportwidget' ),
		'clock'         => __( "This server's clock is more than five minutes off. Ask your host to synchronise it (NTP).", 'supportwidget' ),
		'site_disabled' => __( 'Your agency has switched support off for this site.', 'supportwidget' ),
	);
	$reason = isset( $answer['reason'] ) ? (string) $answer['reason'] : '';
	if ( isset( $reasons[ $reason ] ) ) {
		return new WP_Error( $reason, $reasons[ $reason ] );
	}
	if ( isset( $answer['message'] ) ) {
		/* translators: 1: HTTP status, 2: the service's explanation (English). */
		return new WP_Error( 'refused', sprintf( __( 'The support service refused (%1$d): %2$s', 'supportwidget' ), $status, $answer['message'] ) );
	}
	return new WP_Error( 'not_service', __( 'This address does not answer like a support service. Check the service URL: it is the address widget.js is loaded from, without /widget.js.', 'supportwidget' ) );
}

/**
 * Check the service URL, site key and site secret against the service.
 *
 * @param array $settings Settings to check.
 * @param int   $timeout  Seconds to wait.
 * @return string|WP_Error What was verified, or why not.
 */
function supportwidget_test_connection( $settings, $timeout = 10 ) {
	$answer = supportwidget_post_heartbeat( $settings, array( 'test' => true ), $timeout );
	if ( is_wp_error( $answer ) ) {
		return $answer;
	}
	return sprintf(
		/* translators: 1: site name at the agency, 2: client name, 3: seconds between the clocks. */
		__( 'Connected: the support service knows this site as “%1$s” (%2$s). Site key and site secret verified; clocks %3$d s apart.', 'supportwidget' ),
		isset( $answer['site'] ) ? $answer['site'] : '',
		isset( $answer['client'] ) ? $answer['client'] : '',
		isset( $answer['verified']['clock_skew'] ) ? abs( (int) $answer['verified']['clock_skew'] ) : 0
	);
}
