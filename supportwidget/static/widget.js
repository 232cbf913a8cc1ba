// The supportwidget loader: the "Create a ticket?" button and its dialog (README "Embedding").
//
// This is the readable source. GET /widget.js serves it minified (rjsmin) with the strings of
// every requester language, taken from the gettext catalogs, in place of STRINGS_FROM_CATALOGS
// (supportwidget/intake/widget.py). Its gzip size is budgeted: tests/test_widget_script.py.
(function () {
  'use strict';

  // Every message to or from the form page, and our storage key, starts with this.
  const PREFIX = 'supportwidget:';

  function warn(message) {
    if (window.console) console.warn('[supportwidget] ' + message);
  }

  // A page may call supportwidget('open' | 'emergency' | 'close') before this async script
  // has run, through a stub that queues the calls; we replay them once started:
  //   window.supportwidget = window.supportwidget ||
  //     function () { (window.supportwidget.q = window.supportwidget.q || []).push(arguments); };
  const stub = window.supportwidget;
  // Safe to include twice: the first copy keeps the page.
  if (stub && stub.loaded) return warn('loaded twice');

  // Everything we need to know comes from the embedding <script>'s data-* attributes.
  const script =
    document.currentScript || document.querySelector('script[data-site-key][src*="widget.js"]');
  const options = script ? script.dataset : {};
  const siteKey = options.siteKey;
  if (!siteKey) return warn('no data-site-key');
  // The service is wherever this script came from.
  const service = new URL(script.src).origin;
  let hostContext = {};
  try {
    hostContext = JSON.parse(options.context || '{}');
  } catch (error) {
    warn('data-context is not JSON');
  }

  // {en: {label: …}, fr: {…}, de: {…}}, put in place when served.
  const STRINGS = STRINGS_FROM_CATALOGS;
  const locale = options.locale || document.documentElement.lang || navigator.language || 'en';
  const text = STRINGS[locale.slice(0, 2).toLowerCase()] || STRINGS.en;

  // The host page's styles cannot reach into our shadow root; ours cannot leak out.
  const CSS =
    ':host{all:initial!important;display:block!important}*{box-sizing:border-box}' +
    '.launcher,.dialog{font:15px/1.4 system-ui,sans-serif}' +
    '.launcher{position:fixed;bottom:20px;inset-inline-end:20px;z-index:2147483646;' +
    'font-weight:600;padding:12px 18px;border:0;border-radius:24px;cursor:pointer;' +
    'background:#1f5fbf;color:#fff;box-shadow:0 2px 10px #0006}' +
    ':focus-visible{outline:3px solid #ffbf47;outline-offset:2px}' +
    '.overlay{position:fixed;inset:0;z-index:2147483647;background:#0009;display:flex;' +
    'align-items:center;justify-content:center;padding:16px}' +
    '.overlay[hidden]{display:none}.capturing{opacity:0}' +
    '.dialog{background:#fff;color:#1a1a1a;width:min(660px,100%);height:min(820px,100%);' +
    'display:flex;flex-direction:column;border-radius:10px;overflow:hidden}' +
    'header,nav{display:flex;align-items:center;gap:8px;padding:10px 14px}' +
    'h2{flex:1;margin:0;font-size:17px}' +
    'button{font:inherit;color:inherit;background:none;border:1px solid;border-radius:6px;' +
    'padding:6px 10px;cursor:pointer}[aria-pressed=true]{background:#1f5fbf22}' +
    '.emergency{margin-inline-start:auto;color:#b00020;font-weight:600}' +
    '.notice{margin:0 14px;padding:8px;background:#fff4e5;color:#5c3b00}' +
    '.notice:empty{display:none}iframe{flex:1;border:0;background:#fff}' +
    '@media (max-width:600px){.overlay{padding:0}.dialog{border-radius:0;height:100%}}' +
    '@media (prefers-color-scheme:dark){.dialog{background:#1e1e1e;color:#eee}' +
    '.emergency{color:#ff8a95}}';

  // Built on first open; the launcher button lives in `shadow` from the start.
  let shadow, launcher, overlay, heading, frame, notice, tabs;
  // The form page said it is ready; it filed a request; the emergency form is showing.
  let formReady, submitted, showingEmergency;

  function listen(target, type, handler) {
    target.addEventListener(type, handler);
  }

  function element(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const name in attributes) node.setAttribute(name, attributes[name]);
    node.append(...(children || []));
    return node;
  }

  // The requester's unsent text lives in this page's storage: third-party frames often get none.
  const draftKey = PREFIX + siteKey;

  function readDraft() {
    try {
      return JSON.parse(sessionStorage[draftKey] || 'null');
    } catch (error) {}
  }

  function keepDraft(draft) {
    try {
      if (draft) sessionStorage[draftKey] = JSON.stringify(draft);
      else sessionStorage.removeItem(draftKey);
    } catch (error) {}
  }

  // Black or white text, whichever reads on `color` (WCAG relative luminance above 0.179: black).
  function textColourOn(color) {
    const weights = [0.2126, 0.7152, 0.0722];
    const luminance = color.match(/[\d.]+/g).slice(0, 3).reduce((sum, value, index) => {
      value /= 255;
      const linear = value < 0.04 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
      return sum + weights[index] * linear;
    }, 0);
    return luminance > 0.179 ? '#000' : '#fff';
  }

  function addStyles() {
    try {
      // A constructed stylesheet is not an inline style: strict host CSPs allow it.
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
    } catch (error) {
      shadow.append(element('style', options.nonce ? { nonce: options.nonce } : {}, [CSS]));
    }
  }

  function colourLauncher(color) {
    launcher.style.background = color;
    // The browser drops a colour it cannot parse.
    if (launcher.style.background) {
      launcher.style.color = textColourOn(getComputedStyle(launcher).backgroundColor);
    } else {
      warn('bad data-color');
    }
  }

  function mountLauncher() {
    const host = element('supportwidget-button');
    shadow = host.attachShadow({ mode: 'open' });
    addStyles();
    launcher = element('button', { type: 'button', class: 'launcher', 'aria-haspopup': 'dialog' }, [
      options.label || text.label
    ]);
    listen(launcher, 'click', () => open(false));
    shadow.append(launcher);
    document.body.append(host);
    if (options.color) colourLauncher(options.color);
    listen(shadow, 'keydown', (event) => {
      if (event.key === 'Escape' && overlay && !overlay.hidden) close();
    });
  }

  function buildDialog() {
    heading = element('h2', { id: 'title', tabindex: '-1' }, [text.title]);
    const closeButton = element('button', { type: 'button', 'aria-label': text.close }, ['\u2715']);
    listen(closeButton, 'click', close);
    tabs = [
      element('button', { type: 'button' }, [text.request]),
      element('button', { type: 'button', class: 'emergency' }, [text.emergency])
    ];
    tabs.forEach((tab, index) =>
      listen(tab, 'click', () => {
        loadForm(index === 1);
        frame.focus();
      })
    );
    notice = element('p', { class: 'notice', role: 'status' });
    frame = element('iframe', { title: text.frame, allow: 'display-capture' });
    listen(frame, 'load', formLoaded);
    // Focus sentinels keep Tab inside the dialog, also when it leaves the iframe.
    const first = element('span', { tabindex: '0' });
    const last = element('span', { tabindex: '0' });
    listen(first, 'focus', () => frame.focus());
    listen(last, 'focus', () => closeButton.focus());
    const dialog = element(
      'div',
      { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'title' },
      [first, element('header', {}, [heading, closeButton]), element('nav', {}, tabs), notice,
        frame, last]
    );
    overlay = element('div', { class: 'overlay', hidden: '' }, [dialog]);
    listen(overlay, 'click', (event) => event.target === overlay && close());
  }

  // The hosted form's address: inside the dialog (embed=1), or on its own in a new tab.
  function formUrl(emergency, standalone) {
    const query =
      (standalone ? '' : '&embed=1') + (options.locale ? '&locale=' + options.locale : '');
    return (
      service + '/s/' + siteKey + (emergency ? '/emergency' : '') + query.replace('&', '?')
    );
  }

  function showTab(emergency) {
    showingEmergency = emergency;
    tabs.forEach((tab, index) => tab.setAttribute('aria-pressed', (index === 1) === emergency));
  }

  function say(message, link) {
    notice.textContent = message;
    if (link) notice.replaceChildren(element('a', { href: link, target: '_blank' }, [message]));
  }

  function loadForm(emergency) {
    formReady = submitted = false;
    say('');
    showTab(emergency);
    frame.src = formUrl(emergency);
    // A frame that fails to load says nothing: ask the service directly, and if it does not
    // answer give the agency's own phone and e-mail.
    fetch(service + '/healthz', {
      mode: 'no-cors',
      cache: 'no-store',
      signal: AbortSignal.timeout(5000)
    }).catch(
      () => formReady || say([text.down, options.phone, options.email].filter(Boolean).join(' '))
    );
  }

  function formLoaded() {
    sendContext();
    // A form page that never says "ready" was refused (not an allowed origin) or failed.
    setTimeout(
      () => formReady || notice.textContent || say(text.blocked, formUrl(showingEmergency, true)),
      3000
    );
  }

  // Tell the form page what it cannot see from inside its frame.
  function sendContext() {
    const page = {
      url: location.href,
      title: document.title,
      viewport: innerWidth + 'x' + innerHeight,
      userAgent: navigator.userAgent,
      referrer: document.referrer
    };
    const user = {
      name: options.userName,
      email: options.userEmail,
      signature: options.userSignature
    };
    frame.contentWindow.postMessage(
      { type: PREFIX + 'context', page, user, context: hostContext, draft: readDraft() },
      service
    );
  }

  function open(emergency) {
    if (!overlay) buildDialog();
    if (!formReady || submitted || emergency !== showingEmergency) loadForm(emergency);
    // Attach once, after its src is set: moving an iframe reloads it.
    if (!overlay.isConnected) shadow.append(overlay);
    overlay.hidden = false;
    (formReady ? frame : heading).focus();
  }

  function close() {
    if (overlay && !overlay.hidden) {
      overlay.hidden = true;
      launcher.focus();
    }
  }

  // What the form page tells us, and only the form page in our own frame.
  function formMessage(event) {
    const message = event.data || {};
    if (event.origin !== service || !frame || event.source !== frame.contentWindow) return;
    const type = message.type;
    if (type === PREFIX + 'ready') {
      formReady = true;
      say('');
      showTab(!!message.emergency);
      sendContext();
      if (shadow.activeElement === heading) frame.focus();
    } else if (type === PREFIX + 'close') {
      close();
    } else if (type === PREFIX + 'capture') {
      // A screenshot of the page should show the page, not our dialog.
      overlay.classList.toggle('capturing', message.hide);
    } else if (type === PREFIX + 'draft') {
      keepDraft(message.draft);
    } else if (type === PREFIX + 'submitted') {
      submitted = true;
      keepDraft(null);
      const summary = typeof message.summary === 'string' && message.summary;
      say(summary || text.sent.replace('{ref}', message.reference));
    }
  }
  listen(window, 'message', formMessage);

  // The page's API: supportwidget('open' | 'emergency' | 'close').
  function supportwidget(command) {
    if (command === 'close') close();
    else open(command === 'emergency');
  }
  supportwidget.loaded = true;
  window.supportwidget = supportwidget;

  // The label and colour the agency set for this site; the snippet's own data-* win.
  function siteSettings() {
    fetch(service + '/s/' + siteKey + '/widget.json')
      .then((response) => response.json())
      .then((site) => {
        if (site.label && !options.label) launcher.textContent = site.label;
        if (site.color && !options.color) colourLauncher(site.color);
      })
      .catch(() => {});
  }

  function start() {
    mountLauncher();
    siteSettings();
    const queued = (stub && stub.q) || [];
    queued.forEach((args) => supportwidget(...args));
  }
  if (document.body) start();
  else listen(document, 'DOMContentLoaded', start);
})();
