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
    '.capturing{opacity:0}' +
    '.dialog{background:#fff;color:#1a1a1a;width:min(660px,100%);height:min(820px,100%);' +
    'display:flex;flex-direction:column;border-radius:10px;overflow:hidden}' +
    'header,nav{display:flex;align-items:center;gap:8px;padding:10px 14px}' +
    'h2{flex:1;margin:0;font-size:17px}' +
    'button{font:inherit;color:inherit;background:none;border:1px solid;border-radius:6px;' +
    'padding:6px 10px;cursor:pointer}[aria-pressed=true]{background:#1f5fbf22}' +
    '.emergency{margin-inline-start:auto;color:#b00020;font-weight:600}' +
    '.notice{margin:0 14px;padding:8px;background:#fff4e5;color:#5c3b00}' +
    '.notice:empty{display:none}iframe{flex:1;border:0;background:#fff}' +
    '.panel{flex:1;padding:4px 18px}.panel a{display:block;margin:10px 0}[hidden]{display:none}' +
    '@media (max-width:600px){.overlay{padding:0}.dialog{border-radius:0;height:100%}}' +
    '@media (prefers-color-scheme:dark){.dialog{background:#1e1e1e;color:#eee}' +
    '.emergency{color:#ff8a95}}';

  // Built on first open; the launcher button lives in `shadow` from the start.
  let shadow, launcher, overlay, heading, frame, notice, tabs, panel;
  // The form page said it is ready; it filed a request; the emergency form is showing.
  let formReady, submitted, showingEmergency, timer;

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

  // Black or white text, whichever reads better on `color` (its YIQ brightness over 150).
  function textColourOn(color) {
    const [red, green, blue] = color.match(/\d+/g);
    return red * 299 + green * 587 + blue * 114 > 150000 ? '#000' : '#fff';
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
    // Shown instead of a frame that cannot load: why, and every other way to reach support.
    panel = element('div', { class: 'panel', role: 'alert', hidden: '' });
    frame = element('iframe', { title: text.frame, allow: 'display-capture' });
    listen(frame, 'load', () => sendContext());
    // Focus sentinels keep Tab inside the dialog, also when it leaves the iframe.
    const first = element('span', { tabindex: '0' });
    const last = element('span', { tabindex: '0' });
    listen(first, 'focus', () => frame.focus());
    listen(last, 'focus', () => closeButton.focus());
    const dialog = element(
      'div',
      { class: 'dialog', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'title' },
      [first, element('header', {}, [heading, closeButton]), element('nav', {}, tabs), notice,
        panel, frame, last]
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

  function say(message) {
    notice.textContent = message;
  }

  function link(label, href) {
    return element('a', { href, target: '_blank', rel: 'noopener' }, [label]);
  }

  // Why the form cannot show ('down', 'blocked' by this page's CSP, or not 'setup' for this
  // page), with the form in a new tab, the emergency form, and the agency's phone and e-mail.
  function showPanel(why, about) {
    if (formReady) return;
    clearTimeout(timer);
    about = about || {};
    const phone = options.phone || about.phone;
    const email = options.email || about.email;
    panel.replaceChildren(
      element('p', {}, [text[why]]),
      link(text.newTab, formUrl(showingEmergency, true)),
      link(text.emergency, formUrl(true, true)),
      ...(phone || email ? [element('p', {}, [text.call])] : []),
      ...(phone ? [link(phone, 'tel:' + phone.replace(/[^\d+]/g, ''))] : []),
      ...(email ? [link(email, 'mailto:' + email)] : [])
    );
    panel.hidden = false;
    frame.hidden = true;
  }

  function loadForm(emergency) {
    formReady = submitted = false;
    say('');
    showTab(emergency);
    panel.hidden = true;
    frame.hidden = false;
    frame.src = formUrl(emergency);
    // A frame that cannot load says nothing: ask the service whether the form can open here.
    // No answer (down, hanging, or this page's CSP has no connect-src for us): give the form
    // a moment, then say so.
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(() => showPanel('down'), 1500);
    };
    aboutSite().then((about) => about.ok || showPanel('setup', about), later);
    timer = setTimeout(() => showPanel('down'), 10000);
  }

  // Tell the form page what it cannot see from inside its frame, and whether to put the caret
  // in its first field (the dialog just opened on it).
  function sendContext(focus) {
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
      { type: PREFIX + 'context', page, user, context: hostContext, draft: readDraft(), focus },
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
    if (formReady) sendContext(true);
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
      clearTimeout(timer);
      panel.hidden = true;
      frame.hidden = false;
      say('');
      showTab(!!message.emergency);
      if (shadow.activeElement === heading) frame.focus();
      sendContext(shadow.activeElement === frame);
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
  // This page's Content-Security-Policy refused our frame: the browser would show a broken one.
  listen(document, 'securitypolicyviolation', (event) => {
    const refused = ['frame-src', 'child-src'].includes(event.effectiveDirective);
    if (panel && refused && event.blockedURI.startsWith(service)) showPanel('blocked');
  });

  // The page's API: supportwidget('open' | 'emergency' | 'close').
  function supportwidget(command) {
    if (command === 'close') close();
    else open(command === 'emergency');
  }
  supportwidget.loaded = true;
  window.supportwidget = supportwidget;

  // What the service says of this site here: whether its form may open on this page, the
  // label and colour the agency set, the agency's contacts (GET /s/<key>/widget.json).
  function aboutSite() {
    return fetch(service + '/s/' + siteKey + '/widget.json', {
      signal: AbortSignal.timeout(6000)
    }).then((response) => response.json());
  }

  // The label and colour the agency set for this site; the snippet's own data-* win.
  function siteSettings() {
    aboutSite().then((about) => {
      if (about.label && !options.label) launcher.textContent = about.label;
      if (about.color && !options.color) colourLauncher(about.color);
    }, warn);
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
