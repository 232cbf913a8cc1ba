<?php
/**
 * The few WordPress functions the plugin calls, enough to render its output in tests.
 * State comes from the environment: SW_SETTINGS (JSON), SW_USER (JSON), SW_IFRAME.
 *
 * @package supportwidget
 */

define( 'ABSPATH', __DIR__ . '/' );
if ( getenv( 'SW_IFRAME' ) ) {
	define( 'IFRAME_REQUEST', true );
}
$GLOBALS['sw_hooks']   = array();
$GLOBALS['sw_scripts'] = array();

function add_action( $hook, $callback, $priority = 10, $args = 1 ) {
	$GLOBALS['sw_hooks'][ $hook ][] = $callback;
}
function add_filter( $hook, $callback, $priority = 10, $args = 1 ) {
	$GLOBALS['sw_hooks'][ $hook ][] = $callback;
}
function do_action( $hook, ...$args ) {
	foreach ( $GLOBALS['sw_hooks'][ $hook ] ?? array() as $callback ) {
		$callback( ...$args );
	}
}
function apply_filters( $hook, $value, ...$args ) {
	foreach ( $GLOBALS['sw_hooks'][ $hook ] ?? array() as $callback ) {
		$value = $callback( $value, ...$args );
	}
	return $value;
}
function get_option( $name, $default = false ) {
	return json_decode( getenv( 'SW_SETTINGS' ) ?: '[]', true ) ?: $default;
}
class SW_User {
	public $roles; public $display_name; public $user_email;
	public function __construct( $data ) {
		$this->roles = $data['roles']; $this->display_name = $data['name']; $this->user_email = $data['email'];
	}
	public function exists() { return true; }
}
function wp_get_current_user() {
	return new SW_User( json_decode( getenv( 'SW_USER' ), true ) );
}
class SW_Theme {
	public function get( $key ) { return array( 'Name' => 'Storefront', 'Version' => '4.6.0' )[ $key ]; }
}
function wp_get_theme() { return new SW_Theme(); }
function get_bloginfo( $key ) { return '6.7.1'; }
function home_url() { return 'https://acme.example'; }
function get_user_locale() { return 'fr_FR'; }
function wp_json_encode( $data ) { return json_encode( $data ); }
function esc_attr( $text ) { return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' ); }
function esc_html( $text ) { return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' ); }
function esc_html__( $text, $domain ) { return esc_html( $text ); }
function untrailingslashit( $url ) { return rtrim( $url, '/' ); }
function wp_script_is( $handle, $status ) { return isset( $GLOBALS['sw_scripts'][ $handle ] ); }
function wp_enqueue_script( $handle, $src, $deps, $ver, $args ) {
	$GLOBALS['sw_scripts'][ $handle ] = array( 'src' => $src, 'args' => $args );
}
class SW_Admin_Bar {
	public $nodes = array();
	public function add_node( $node ) { $this->nodes[] = $node; }
}
