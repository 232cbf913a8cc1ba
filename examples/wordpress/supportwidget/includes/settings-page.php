<?php
/**
 * The settings page (included by supportwidget_render_settings() with $settings and $status).
 * The saved site secret is never printed: an empty field keeps it.
 *
 * @package supportwidget
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

$supportwidget_emergency = supportwidget_is_configured( $settings ) ? supportwidget_form_url( $settings, true ) : '';
?>
<div class="wrap">
	<h1><?php esc_html_e( 'Support widget', 'supportwidget' ); ?></h1>
	<?php if ( isset( $_GET['supportwidget-tested'] ) && ! empty( $status['test'] ) ) : // phpcs:ignore WordPress.Security.NonceVerification -- only chooses what to show. ?>
		<div class="notice notice-<?php echo $status['test']['ok'] ? 'success' : 'error'; ?>" id="supportwidget-test-result"><p><?php echo esc_html( $status['test']['message'] ); ?></p></div>
	<?php endif; ?>
	<?php if ( $supportwidget_emergency ) : ?>
		<div class="notice notice-info inline"><p>
			<?php esc_html_e( 'Bookmark the emergency form: it works even when this dashboard is down.', 'supportwidget' ); ?>
			<a href="<?php echo esc_url( $supportwidget_emergency ); ?>" id="supportwidget-emergency-link"><?php echo esc_html( $supportwidget_emergency ); ?></a>
		</p></div>
	<?php endif; ?>
	<form method="post" action="options.php">
		<?php settings_fields( 'supportwidget' ); ?>
		<table class="form-table" role="presentation">
			<tr><th scope="row"><label for="sw-url"><?php esc_html_e( 'Service URL', 'supportwidget' ); ?></label></th>
				<td><input id="sw-url" class="regular-text" type="url" name="supportwidget_settings[service_url]" value="<?php echo esc_attr( $settings['service_url'] ); ?>" placeholder="https://support.example-agency.com" aria-describedby="sw-url-hint">
				<p class="description" id="sw-url-hint"><?php esc_html_e( 'The address widget.js is loaded from, without /widget.js.', 'supportwidget' ); ?></p></td></tr>
			<tr><th scope="row"><label for="sw-key"><?php esc_html_e( 'Site key', 'supportwidget' ); ?></label></th>
				<td><input id="sw-key" class="regular-text" name="supportwidget_settings[site_key]" value="<?php echo esc_attr( $settings['site_key'] ); ?>" autocomplete="off" spellcheck="false"></td></tr>
			<tr><th scope="row"><label for="sw-secret"><?php esc_html_e( 'Site secret', 'supportwidget' ); ?></label></th>
				<td><input id="sw-secret" class="regular-text" type="password" name="supportwidget_settings[site_secret]" value="" autocomplete="new-password" spellcheck="false" aria-describedby="sw-secret-hint"
					placeholder="<?php echo '' !== $settings['site_secret'] ? esc_attr__( 'Saved (not shown)', 'supportwidget' ) : ''; ?>">
				<p class="description" id="sw-secret-hint"><?php echo '' !== $settings['site_secret'] ? esc_html__( 'A secret is saved. Leave the field empty to keep it; enter a new one to replace it.', 'supportwidget' ) : esc_html__( 'Signs the signed-in user’s name and e-mail, and the heartbeat.', 'supportwidget' ); ?></p></td></tr>
			<tr><th scope="row"><label for="sw-phone"><?php esc_html_e( 'Agency phone (shown when support is unreachable)', 'supportwidget' ); ?></label></th>
				<td><input id="sw-phone" class="regular-text" type="tel" name="supportwidget_settings[phone]" value="<?php echo esc_attr( $settings['phone'] ); ?>"></td></tr>
			<tr><th scope="row"><label for="sw-email"><?php esc_html_e( 'Agency e-mail (shown when support is unreachable)', 'supportwidget' ); ?></label></th>
				<td><input id="sw-email" class="regular-text" type="email" name="supportwidget_settings[email]" value="<?php echo esc_attr( $settings['email'] ); ?>"></td></tr>
			<tr><th scope="row"><?php esc_html_e( 'Who sees the button', 'supportwidget' ); ?></th>
				<td><fieldset><legend class="screen-reader-text"><?php esc_html_e( 'Who sees the button', 'supportwidget' ); ?></legend>
				<?php foreach ( wp_roles()->get_names() as $supportwidget_role => $supportwidget_label ) : ?>
					<label><input type="checkbox" name="supportwidget_settings[roles][]" value="<?php echo esc_attr( $supportwidget_role ); ?>" <?php checked( in_array( $supportwidget_role, (array) $settings['roles'], true ) ); ?>> <?php echo esc_html( translate_user_role( $supportwidget_label ) ); ?></label><br>
				<?php endforeach; ?>
				</fieldset></td></tr>
		</table>
		<?php submit_button(); ?>
	</form>
	<h2><?php esc_html_e( 'Connection', 'supportwidget' ); ?></h2>
	<?php
	supportwidget_print_outcome( $status, 'test' );
	supportwidget_print_outcome( $status, 'heartbeat' );
	?>
	<form method="post" action="<?php echo esc_url( admin_url( 'admin-post.php' ) ); ?>">
		<input type="hidden" name="action" value="supportwidget_test">
		<?php wp_nonce_field( 'supportwidget-test' ); ?>
		<p><?php esc_html_e( 'Checks the saved service URL, site key and site secret against the support service.', 'supportwidget' ); ?></p>
		<?php submit_button( __( 'Test connection', 'supportwidget' ), 'secondary', 'supportwidget-test', false ); ?>
	</form>
</div>
