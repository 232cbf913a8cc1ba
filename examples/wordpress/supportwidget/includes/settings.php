<?php
/**
 * Settings page: service URL, site key, site secret, roles; and the emergency link to bookmark.
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

add_action(
	'admin_init',
	function () {
		register_setting(
			'supportwidget',
			'supportwidget_settings',
			array(
				'type'              => 'array',
				'sanitize_callback' => 'supportwidget_sanitize_settings',
			)
		);
	}
);

/**
 * Clean submitted settings.
 *
 * @param array $input Raw input.
 * @return array
 */
function supportwidget_sanitize_settings( $input ) {
	$input = is_array( $input ) ? $input : array();
	$roles = isset( $input['roles'] ) ? array_map( 'sanitize_key', (array) $input['roles'] ) : array();
	return array(
		'service_url' => esc_url_raw( isset( $input['service_url'] ) ? trim( $input['service_url'] ) : '' ),
		'site_key'    => sanitize_text_field( isset( $input['site_key'] ) ? $input['site_key'] : '' ),
		'site_secret' => sanitize_text_field( isset( $input['site_secret'] ) ? $input['site_secret'] : '' ),
		'phone'       => sanitize_text_field( isset( $input['phone'] ) ? $input['phone'] : '' ),
		'email'       => sanitize_email( isset( $input['email'] ) ? $input['email'] : '' ),
		'roles'       => $roles,
	);
}

add_action(
	'admin_menu',
	function () {
		add_options_page(
			__( 'Support widget', 'supportwidget' ),
			__( 'Support widget', 'supportwidget' ),
			'manage_options',
			'supportwidget',
			'supportwidget_render_settings'
		);
	}
);

/** Render the settings page. */
function supportwidget_render_settings() {
	if ( ! current_user_can( 'manage_options' ) ) {
		return;
	}
	$settings  = supportwidget_settings();
	$emergency = '' !== $settings['service_url'] && '' !== $settings['site_key']
		? untrailingslashit( $settings['service_url'] ) . '/s/' . rawurlencode( $settings['site_key'] ) . '/emergency'
		: '';
	?>
	<div class="wrap">
		<h1><?php esc_html_e( 'Support widget', 'supportwidget' ); ?></h1>
		<?php if ( $emergency ) : ?>
			<div class="notice notice-info"><p>
				<?php esc_html_e( 'Bookmark the emergency form: it works even when this dashboard is down.', 'supportwidget' ); ?>
				<a href="<?php echo esc_url( $emergency ); ?>" id="supportwidget-emergency-link"><?php echo esc_html( $emergency ); ?></a>
			</p></div>
		<?php endif; ?>
		<form method="post" action="options.php">
			<?php settings_fields( 'supportwidget' ); ?>
			<table class="form-table" role="presentation">
				<tr><th scope="row"><label for="sw-url"><?php esc_html_e( 'Service URL', 'supportwidget' ); ?></label></th>
					<td><input id="sw-url" class="regular-text" type="url" name="supportwidget_settings[service_url]" value="<?php echo esc_attr( $settings['service_url'] ); ?>"></td></tr>
				<tr><th scope="row"><label for="sw-key"><?php esc_html_e( 'Site key', 'supportwidget' ); ?></label></th>
					<td><input id="sw-key" class="regular-text" name="supportwidget_settings[site_key]" value="<?php echo esc_attr( $settings['site_key'] ); ?>"></td></tr>
				<tr><th scope="row"><label for="sw-secret"><?php esc_html_e( 'Site secret', 'supportwidget' ); ?></label></th>
					<td><input id="sw-secret" class="regular-text" type="password" autocomplete="off" name="supportwidget_settings[site_secret]" value="<?php echo esc_attr( $settings['site_secret'] ); ?>"></td></tr>
				<tr><th scope="row"><label for="sw-phone"><?php esc_html_e( 'Agency phone (shown if support is unreachable)', 'supportwidget' ); ?></label></th>
					<td><input id="sw-phone" class="regular-text" type="tel" name="supportwidget_settings[phone]" value="<?php echo esc_attr( $settings['phone'] ); ?>"></td></tr>
				<tr><th scope="row"><label for="sw-email"><?php esc_html_e( 'Agency e-mail (shown if support is unreachable)', 'supportwidget' ); ?></label></th>
					<td><input id="sw-email" class="regular-text" type="email" name="supportwidget_settings[email]" value="<?php echo esc_attr( $settings['email'] ); ?>"></td></tr>
				<tr><th scope="row"><?php esc_html_e( 'Who sees the button', 'supportwidget' ); ?></th>
					<td><?php foreach ( wp_roles()->get_names() as $role => $label ) : ?>
						<label><input type="checkbox" name="supportwidget_settings[roles][]" value="<?php echo esc_attr( $role ); ?>" <?php checked( in_array( $role, (array) $settings['roles'], true ) ); ?>> <?php echo esc_html( translate_user_role( $label ) ); ?></label><br>
					<?php endforeach; ?></td></tr>
			</table>
			<?php submit_button(); ?>
		</form>
	</div>
	<?php
}
