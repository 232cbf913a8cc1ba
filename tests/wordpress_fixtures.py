"""A real WordPress for the plugin's tests, installed once per test session.

Debian's `wordpress` package (6.1) is copied into a temporary folder with our own
wp-config.php, on a fresh database of the machine's MariaDB (127.0.0.1:3306, root without a
password; dropped afterwards), served by `php -S`. The plugin is installed from the zip the
README's command builds. Users: admin, an editor, a subscriber, "Tom & Jerry O'Neil" (an
administrator whose name WordPress stores HTML-encoded) and a French-speaking administrator.
Skipped, with the reason, where php, Debian's wordpress or MariaDB is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page

from supportwidget.models import Client, Site, Staff, db

from browser_fixtures import fresh_page, serving, waitress_server
from conftest import make_app

DEBIAN_WORDPRESS = Path("/usr/share/wordpress")
REPO = Path(__file__).parent.parent
PHP_TESTS = REPO / "examples" / "wordpress" / "tests"
MARIADB = ("127.0.0.1", 3306)
# The README's command, run from the repository root.
ZIP_COMMAND = [
    sys.executable,
    "-m",
    "zipfile",
    "-c",
    "supportwidget-wordpress.zip",
    "examples/wordpress/supportwidget",
]
PLUGIN_FILE = "supportwidget/supportwidget.php"
PASSWORD = "a long test password"
USERS = {
    "admin": {"role": "administrator", "display_name": "Site Admin"},
    "editor": {"role": "editor", "display_name": "Eddie Editor"},
    "subscriber": {"role": "subscriber", "display_name": "Sue Subscriber"},
    "tom": {"role": "administrator", "display_name": "Tom & Jerry O'Neil"},
    "francoise": {"role": "administrator", "display_name": "Françoise", "locale": "fr_FR"},
}


def missing_parts() -> str | None:
    """Return why a real WordPress cannot run here, or None."""
    if shutil.which("php") is None:
        return "php missing (.ci/run installs php-cli)"
    if not (DEBIAN_WORDPRESS / "wp-includes" / "version.php").is_file():
        return "Debian's wordpress package missing (.ci/run: apt-get install wordpress)"
    modules = subprocess.run(["php", "-m"], capture_output=True, text=True).stdout.split()
    if "mysqli" not in modules:
        return "PHP's mysqli missing (.ci/run: apt-get install php-mysql)"
    if shutil.which("mysql") is None:
        return "the mysql client missing (it comes with Debian's wordpress package)"
    try:
        socket.create_connection(MARIADB, timeout=2).close()
    except OSError:
        return "MariaDB does not answer on 127.0.0.1:3306"
    return None


def free_port() -> int:
    """Return a TCP port nobody listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mysql(statement: str) -> None:
    """Run one statement on the machine's MariaDB as root."""
    host, port = MARIADB
    command = ["mysql", "-h", host, "-P", str(port), "-u", "root", "-e", statement]
    subprocess.run(command, check=True, capture_output=True, timeout=30)


def build_zip(folder: Path) -> Path:
    """Build the plugin zip with the README's command (from the repository root)."""
    subprocess.run(ZIP_COMMAND, cwd=REPO, check=True, timeout=60)
    built = folder / "supportwidget-wordpress.zip"
    shutil.move(REPO / "supportwidget-wordpress.zip", built)
    return built


def file_md5s(root: Path) -> dict[str, str]:
    """Return the MD5 of every file WordPress ships, as WordPress.org's checksums list them."""
    sums = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith(("wp-content/", "wp-config")):
            sums[relative] = hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324
    return sums


WP_CONFIG = """<?php
define( 'DB_NAME', '{database}' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', '{host}:{port}' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
{keys}
$table_prefix = 'wp_';
define( 'WP_HOME', '{url}' );
define( 'WP_SITEURL', '{url}' );
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_LOG', '{log}' );
define( 'WP_DEBUG_DISPLAY', false );
// The tests run WP-Cron themselves (GET /wp-cron.php), and nothing may leave this machine.
define( 'DISABLE_WP_CRON', true );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'FS_METHOD', 'direct' );
if ( ! defined( 'ABSPATH' ) ) {{
	define( 'ABSPATH', __DIR__ . '/' );
}}
require_once ABSPATH . 'wp-settings.php';
"""


@dataclass
class WordPress:
    """A running WordPress: its folder, address, database and plugin zip."""

    root: Path
    url: str
    database: str
    plugin_zip: Path
    pristine: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return self.url

    @property
    def log(self) -> Path:
        return self.root / "debug.log"

    def php(self, code: str, *, install: bool = False) -> str:
        """Run PHP inside this WordPress (command line) and return what it printed."""
        command = ["php", str(PHP_TESTS / "wp-run.php"), str(self.root)]
        result = subprocess.run(
            [*command, *(["install"] if install else [])],
            input=code,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def value(self, expression: str) -> Any:
        """Return a PHP expression's value, evaluated inside WordPress, through JSON."""
        return json.loads(self.php(f"echo wp_json_encode( {expression} );"))

    def install_plugin(self) -> None:
        """Unpack the plugin zip into wp-content/plugins (WordPress deletes it on uninstall)."""
        plugins = self.root / "wp-content" / "plugins"
        shutil.rmtree(plugins / "supportwidget", ignore_errors=True)
        with zipfile.ZipFile(self.plugin_zip) as archive:
            archive.extractall(plugins)

    def activate(self) -> None:
        """Install and activate the plugin (the activation hook runs)."""
        if not (self.root / "wp-content" / "plugins" / PLUGIN_FILE).is_file():
            self.install_plugin()
        self.php(f"activate_plugin( '{PLUGIN_FILE}' );")

    def deactivate(self) -> None:
        self.php(f"deactivate_plugins( '{PLUGIN_FILE}' );")

    def configure(self, **settings: Any) -> None:
        """Save the plugin's settings as they are stored (no validation, no connection test)."""
        stored = {
            "service_url": "",
            "site_key": "",
            "site_secret": "",
            "phone": "",
            "email": "",
            "roles": ["administrator", "editor"],
            **settings,
        }
        self.php(
            "update_option( 'supportwidget_settings', json_decode( "
            f"{php_string(json.dumps(stored))}, true ) );"
            "delete_option( 'supportwidget_status' );"
        )

    def get(self, path: str) -> tuple[int, str]:
        """GET a path (no cookies) and return the status and body."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def run_cron(self) -> None:
        """Run the due WP-Cron events, as a visitor's request would."""
        status, _ = self.get("/wp-cron.php")
        assert status == 200

    def due_now(self, hook: str) -> None:
        """Make a scheduled event due now, keeping its schedule."""
        self.php(
            f"$next = wp_next_scheduled( '{hook}' );"
            f"$schedule = wp_get_schedule( '{hook}' );"
            f"wp_clear_scheduled_hook( '{hook}' );"
            f"wp_schedule_event( time() - 1, $schedule ? $schedule : 'hourly', '{hook}' );"
        )

    def restore_core_files(self) -> None:
        """Undo what a test changed under wp-admin/ and wp-includes/."""
        for folder in ("wp-admin", "wp-includes"):
            for path in (self.root / folder).rglob("*"):
                relative = path.relative_to(self.root).as_posix()
                if not path.is_file():
                    continue
                if relative not in self.pristine:
                    path.unlink()
                elif hashlib.md5(path.read_bytes()).hexdigest() != self.pristine[relative]:  # noqa: S324
                    shutil.copyfile(DEBIAN_WORDPRESS / relative, path)


def php_string(text: str) -> str:
    """Return a PHP single-quoted string literal holding ``text``."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _write_config(root: Path, database: str, url: str) -> None:
    keys = "\n".join(
        f"define( '{name}', '{secrets.token_hex(32)}' );"
        for name in (
            "AUTH_KEY",
            "SECURE_AUTH_KEY",
            "LOGGED_IN_KEY",
            "NONCE_KEY",
            "AUTH_SALT",
            "SECURE_AUTH_SALT",
            "LOGGED_IN_SALT",
            "NONCE_SALT",
        )
    )
    host, port = MARIADB
    (root / "wp-config.php").write_text(
        WP_CONFIG.format(
            database=database,
            host=host,
            port=port,
            keys=keys,
            url=url,
            log=root / "debug.log",
        )
    )


def _install(wordpress: WordPress) -> None:
    """Install WordPress and add the test users."""
    wordpress.php(
        "wp_install( 'Acme Test Site', 'admin', 'admin@acme.test', false, '', "
        f"{php_string(PASSWORD)} );",
        install=True,
    )
    users = json.dumps(USERS)
    wordpress.php(
        f"foreach ( json_decode( {php_string(users)}, true ) as $login => $user ) {{"
        "  $id = username_exists( $login );"
        "  $data = array( 'user_login' => $login, 'user_pass' => "
        f"{php_string(PASSWORD)}, 'user_email' => $login . '@example.com',"
        "    'role' => $user['role'], 'display_name' => $user['display_name'],"
        "    'locale' => isset( $user['locale'] ) ? $user['locale'] : '' );"
        "  if ( $id ) { $data['ID'] = $id; wp_update_user( $data ); }"
        "  else { wp_insert_user( $data ); }"
        "}"
    )


@contextmanager
def php_server(root: Path, port: int) -> Iterator[None]:
    """Serve WordPress with PHP's built-in server (a few workers) until the block ends."""
    env = {**os.environ, "PHP_CLI_SERVER_WORKERS": "4"}
    command = ["php", "-S", f"127.0.0.1:{port}", "-t", str(root)]
    log = (root / "php-server.log").open("wb")
    # Its own process group: the workers it forks stop with it.
    server = subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "php -S did not start"
                assert server.poll() is None, "php -S exited"
                time.sleep(0.1)
        yield
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
        log.close()


def copy_wordpress(root: Path) -> None:
    """Copy Debian's WordPress; its links into other packages become copies of their targets."""
    shutil.copytree(DEBIAN_WORDPRESS, root, symlinks=True, ignore=_core_languages)
    for link in [path for path in root.rglob("*") if path.is_symlink()]:
        # Relative links (wp-includes/js/underscore.min.js -> ../../../javascript/…).
        target = (DEBIAN_WORDPRESS / link.relative_to(root)).resolve()
        link.unlink()
        if target.is_dir():
            shutil.copytree(target, link)
        elif target.is_file():
            shutil.copyfile(target, link)


def _core_languages(folder: str, names: list[str]) -> list[str]:
    """Leave out WordPress's own translations (31 MB the tests do not need)."""
    return ["languages"] if Path(folder) == DEBIAN_WORDPRESS / "wp-content" else []


@pytest.fixture(scope="session")
def wordpress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WordPress]:
    """Install Debian's WordPress once for the session, with the plugin unpacked."""
    reason = missing_parts()
    if reason:
        pytest.skip(f"real WordPress tests skipped: {reason}")
    folder = tmp_path_factory.mktemp("wordpress")
    root = folder / "wordpress"
    copy_wordpress(root)
    (root / "wp-content" / "mu-plugins").mkdir(exist_ok=True)
    shutil.copy(PHP_TESTS / "answer-checksums.php", root / "wp-content" / "mu-plugins")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = f"sw_wp_{os.getpid()}_{secrets.token_hex(3)}"
    mysql(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    try:
        _write_config(root, database, url)
        wordpress = WordPress(root, url, database, build_zip(folder), file_md5s(root))
        # What api.wordpress.org answers for these files (the tests change files, not this).
        checksums = {"checksums": wordpress.pristine}
        (root / "core-checksums.json").write_text(json.dumps(checksums))
        _install(wordpress)
        wordpress.install_plugin()
        with php_server(root, port):
            yield wordpress
    finally:
        mysql(f"DROP DATABASE IF EXISTS `{database}`")


@dataclass
class WordPressService:
    """The support service for the WordPress tests: its URL, app, site key and secret."""

    url: str
    app: Flask
    site_key: str
    secret: str
    smtp: Any

    def query(self, fn: Any) -> Any:
        """Run ``fn`` in an app context on a fresh session and return its result."""
        with self.app.app_context():
            try:
                return fn()
            finally:
                db.session.remove()


@pytest.fixture
def service(wordpress: WordPress, tmp_path: Path, smtp_server: Any) -> Iterator[WordPressService]:
    """Run the support service with a site whose allowed origin is the test WordPress."""
    server = waitress_server()
    url = f"http://127.0.0.1:{server.effective_port}"
    app = make_app(
        f"sqlite:///{tmp_path / 'service.sqlite'}",
        tmp_path,
        **smtp_server.config(),
        PUBLIC_URL=url,
    )
    with app.app_context():
        client = Client(name="Acme Shop", emails=["owner@acme.test"])
        site = Site(client=client, name="acme.test", url=wordpress.url)
        site.allowed_origins = [wordpress.url]
        db.session.add_all([client, site, Staff(name="Alice", email="alice@agency.test")])
        db.session.commit()
        key, secret = site.site_key, site.secret
        db.session.remove()
    with serving(server, app):
        yield WordPressService(url, app, key, secret, smtp_server)


@pytest.fixture
def down_url() -> str:
    """Return the address of a support service that is down: nothing listens there."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """Return the address of a support service that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for connection in held:
            connection.close()
        listener.close()


@contextmanager
def sign_in(browser: Browser, wordpress: WordPress, login: str) -> Iterator[Page]:
    """Yield a page signed in to wp-admin as ``login`` (the session is kept for the next test)."""
    state = wordpress.sessions.get(login)
    with fresh_page(browser, storage_state=state) as page:
        if state is None:
            page.goto(f"{wordpress.url}/wp-login.php")
            page.fill("#user_login", login)
            page.fill("#user_pass", PASSWORD)
            page.click("#wp-submit")
            page.wait_for_url("**/wp-admin/**", wait_until="domcontentloaded")
            wordpress.sessions[login] = page.context.storage_state()
        yield page
