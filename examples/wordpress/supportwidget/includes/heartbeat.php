<?php
/**
 * The heartbeat: every five minutes, through WP-Cron, the site tells the support service its
 * WordPress, PHP and theme versions, its active plugins, and whether the files under wp-admin/
 * and wp-includes/ still match the checksums WordPress.org publishes for this version.
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

define( 'SUPPORTWIDGET_HEARTBEAT', 'supportwidget_heartbeat' );
// The service reads at most this many files of each kind.
define( 'SUPPORTWIDGET_MAX_FILES', 1000 );

/**
 * Add the five-minute schedule.
 *
 * @param array $schedules WP-Cron schedules.
 * @return array
 */
function supportwidget_cron_schedules( $schedules ) {
	$schedules['supportwidget_five_minutes'] = array(
		'interval' => 5 * MINUTE_IN_SECONDS,
		'display'  => __( 'Every five minutes (support heartbeat)', 'supportwidget' ),
	);
	return $schedules;
}
add_filter( 'cron_schedules', 'supportwidget_cron_schedules' );

/** Schedule the heartbeat unless it is (on activation, and after a copy without one). */
function supportwidget_schedule_heartbeat() {
	if ( ! wp_next_scheduled( SUPPORTWIDGET_HEARTBEAT ) ) {
		wp_schedule_event( time(), 'supportwidget_five_minutes', SUPPORTWIDGET_HEARTBEAT );
	}
}
add_action( 'init', 'supportwidget_schedule_heartbeat' );

/** Stop the heartbeat (on deactivation). */
function supportwidget_unschedule_heartbeat() {
	wp_clear_scheduled_hook( SUPPORTWIDGET_HEARTBEAT );
}

/** Send the heartbeat and keep the outcome for the settings page. */
function supportwidget_send_heartbeat() {
	$settings = supportwidget_settings();
	if ( ! supportwidget_is_configured( $settings, true ) ) {
		return;
	}
	$answer = supportwidget_post_heartbeat( $settings, supportwidget_heartbeat_report() );
	if ( is_wp_error( $answer ) ) {
		supportwidget_remember( 'heartbeat', $answer );
		return;
	}
	$core = isset( $answer['core'] ) ? $answer['core'] : '';
	supportwidget_remember(
		'heartbeat',
		'changed' === $core ? __( 'received; the support service was told that WordPress core files changed.', 'supportwidget' ) : __( 'received.', 'supportwidget' )
	);
}
add_action( SUPPORTWIDGET_HEARTBEAT, 'supportwidget_send_heartbeat' );

/** Return what the heartbeat tells the service (the site key is added when it is sent). */
function supportwidget_heartbeat_report() {
	global $wp_version;
	$theme = wp_get_theme();
	return array(
		'home'           => home_url(),
		'plugin_version' => SUPPORTWIDGET_VERSION,
		'wordpress'      => $wp_version,
		'php'            => PHP_VERSION,
		'theme'          => array(
			'name'    => (string) $theme->get( 'Name' ),
			'version' => (string) $theme->get( 'Version' ),
		),
		'plugins'        => supportwidget_active_plugins(),
		'core'           => supportwidget_core_check(),
	);
}

/** Return the active plugins (network-activated ones too) with their names and versions. */
function supportwidget_active_plugins() {
	if ( ! function_exists( 'get_plugins' ) ) {
		require_once ABSPATH . 'wp-admin/includes/plugin.php';
	}
	$active = (array) get_option( 'active_plugins', array() );
	if ( is_multisite() ) {
		$active = array_merge( $active, array_keys( (array) get_site_option( 'active_sitewide_plugins', array() ) ) );
	}
	$plugins = array();
	foreach ( get_plugins() as $file => $data ) {
		if ( in_array( $file, $active, true ) ) {
			$plugins[] = array(
				'file'    => $file,
				'name'    => $data['Name'],
				'version' => $data['Version'],
			);
		}
	}
	return $plugins;
}

/**
 * Compare the files under wp-admin/ and wp-includes/ with WordPress.org's checksums.
 *
 * @return array Status (ok, changed, unavailable), files checked, modified and added files
 *               with their MD5, missing files.
 */
function supportwidget_core_check() {
	$checksums = supportwidget_core_checksums();
	if ( ! $checksums ) {
		return array( 'status' => 'unavailable' );
	}
	$known    = array();
	$modified = array();
	$missing  = array();
	foreach ( $checksums as $file => $md5 ) {
		if ( ! supportwidget_is_core_path( $file ) ) {
			continue;
		}
		$known[ $file ] = true;
		$actual         = is_file( ABSPATH . $file ) ? md5_file( ABSPATH . $file ) : false;
		if ( false === $actual ) {
			$missing[] = $file;
		} elseif ( $actual !== $md5 ) {
			$modified[] = array(
				'path' => $file,
				'md5'  => $actual,
			);
		}
	}
	$added = supportwidget_added_core_files( $known );
	return array(
		'status'   => $modified || $added ? 'changed' : 'ok',
		'checked'  => count( $known ) - count( $missing ),
		'modified' => array_slice( $modified, 0, SUPPORTWIDGET_MAX_FILES ),
		'added'    => array_slice( $added, 0, SUPPORTWIDGET_MAX_FILES ),
		'missing'  => array_slice( $missing, 0, SUPPORTWIDGET_MAX_FILES ),
	);
}

/**
 * Tell whether a path (relative to ABSPATH) is under wp-admin/ or wp-includes/.
 *
 * @param string $file Relative path.
 * @return bool
 */
function supportwidget_is_core_path( $file ) {
	return 0 === strpos( $file, 'wp-admin/' ) || 0 === strpos( $file, 'wp-includes/' );
}

/**
 * Return the files under wp-admin/ and wp-includes/ that WordPress does not ship.
 *
 * A dropped-in file (a web shell beside the core files) is the commonest sign of a hack.
 *
 * @param array $known Relative paths WordPress ships, as keys.
 * @return array[] Each with path and md5.
 */
function supportwidget_added_core_files( $known ) {
	$root  = wp_normalize_path( ABSPATH );
	$added = array();
	foreach ( array( 'wp-admin', 'wp-includes' ) as $dir ) {
		$files = new RecursiveIteratorIterator( new RecursiveDirectoryIterator( $root . $dir, FilesystemIterator::SKIP_DOTS ) );
		foreach ( $files as $file ) {
			$path = substr( wp_normalize_path( $file->getPathname() ), strlen( $root ) );
			if ( $file->isFile() && ! isset( $known[ $path ] ) ) {
				$added[] = array(
					'path' => $path,
					'md5'  => md5_file( $file->getPathname() ),
				);
			}
		}
	}
	return $added;
}

/**
 * Return WordPress.org's checksums of this version's files, kept for a day.
 *
 * @return array|false Relative path => MD5, or false when WordPress.org cannot be asked.
 */
function supportwidget_core_checksums() {
	global $wp_version, $wp_local_package;
	$locale = isset( $wp_local_package ) ? $wp_local_package : 'en_US';
	$key    = 'supportwidget_core_checksums';
	$cached = get_transient( $key );
	if ( is_array( $cached ) && $cached['version'] === $wp_version && $cached['locale'] === $locale ) {
		return $cached['checksums'];
	}
	if ( ! function_exists( 'get_core_checksums' ) ) {
		require_once ABSPATH . 'wp-admin/includes/update.php';
	}
	$checksums = get_core_checksums( $wp_version, $locale );
	if ( ! is_array( $checksums ) || ! $checksums ) {
		return false;
	}
	set_transient( $key, compact( 'checksums' ) + array( 'version' => $wp_version, 'locale' => $locale ), DAY_IN_SECONDS );
	return $checksums;
}
