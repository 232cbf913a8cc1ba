/*! supportwidget loader, see README "Embedding" */
((w, d) => {
  'use strict';

  const P = 'supportwidget:';
  const warn = (message) => w.console && console.warn('[supportwidget] ' + message);

  const stub = w.supportwidget;
  // Safe to include twice.
  if (stub && stub.loaded) return warn('loaded twice');

  const script = d.currentScript || d.querySelector('script[data-site-key][src*="widget.js"]');
  const data = script ? script.dataset : {};
  const key = data.siteKey;
  if (!key) return warn('no data-site-key');
  const origin = new URL(script.src).origin;
  let context = {};
  try {
    context = JSON.parse(data.context || '{}');
  } catch (e) {
    warn('data-context is not JSON');
  }

  // label|title|close|request|emergency|frame|down|blocked|sent
  const STRINGS = {
    en: 'Create a ticket?|Contact support|Close|Request|Emergency? Site down / hacked / broken|' +
      'Support request form|Support cannot be reached. Please call or e-mail your agency.|' +
      'The form cannot be shown here: open it in a new tab.|Request {ref} sent.',
    fr: 'Créer un ticket ?|Contacter le support|Fermer|Demande|Urgence ? Site en panne / piraté / ' +
      'cassé|Formulaire d’assistance|Support injoignable. Appelez ou écrivez à votre agence.|' +
      'Le formulaire ne s’affiche pas ici : ouvrez-le dans un nouvel onglet.|Demande {ref} envoyée.',
    de: 'Ticket erstellen?|Support kontaktieren|Schließen|Anfrage|Notfall? Website offline / ' +
      'gehackt / defekt|Support-Formular|Support nicht erreichbar. Bitte rufen Sie Ihre Agentur ' +
      'an.|Formular hier nicht darstellbar: in neuem Tab öffnen.|Anfrage {ref} gesendet.'
  };
  const locale = data.locale || d.documentElement.lang || navigator.language || 'en';
  const T = (STRINGS[locale.slice(0, 2).toLowerCase()] || STRINGS.en).split('|');

  const CSS = ':host{all:initial!important;display:block!important}*{box-sizing:border-box}' +
    '.b,.d{font:15px/1.4 system-ui,sans-serif}.b{position:fixed;bottom:20px;' +
    'inset-inline-end:20px;z-index:2147483646;font-weight:600;padding:12px 18px;border:0;' +
    'border-radius:24px;cursor:pointer;background:#1f5fbf;color:#fff;' +
    'box-shadow:0 2px 10px #0006}:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}' +
    '.o{position:fixed;inset:0;z-index:2147483647;background:#0009;display:flex;' +
    'align-items:center;justify-content:center;padding:16px}.o[hidden]{display:none}.c{opacity:0}' +
    '.d{background:#fff;color:#1a1a1a;width:min(660px,100%);height:min(820px,100%);display:flex;' +
    'flex-direction:column;border-radius:10px;overflow:hidden}' +
    'header,nav{display:flex;align-items:center;gap:8px;padding:10px 14px}' +
    'h2{flex:1;margin:0;font-size:17px}button{font:inherit;color:inherit;background:none;' +
    'border:1px solid;border-radius:6px;padding:6px 10px;cursor:pointer}' +
    '[aria-pressed=true]{background:#1f5fbf22}.e{margin-inline-start:auto;color:#b00020;' +
    'font-weight:600}.n{margin:0 14px;padding:8px;background:#fff4e5;color:#5c3b00}' +
    '.n:empty{display:none}iframe{flex:1;border:0;background:#fff}' +
    '@media (max-width:600px){.o{padding:0}.d{border-radius:0;' +
    'height:100%}}@media (prefers-color-scheme:dark){.d{background:#1e1e1e;color:#eee}' +
    '.e{color:#ff8a95}}';

  let root, button, overlay, heading, frame, note, tabs;
  let ready, done, emergency;

  const on = (node, type, fn) => node.addEventListener(type, fn);

  // Drafts live here: third-party frames often get no storage.
  function draft(value) {
    try {
      if (value === undefined) return JSON.parse(sessionStorage[P + key] || 'null');
      if (value) sessionStorage[P + key] = JSON.stringify(value);
      else sessionStorage.removeItem(P + key);
    } catch (e) {}
  }

  function el(tag, attrs, kids) {
    const node = d.createElement(tag);
    for (const name in attrs) node.setAttribute(name, attrs[name]);
    node.append(...(kids || []));
    return node;
  }

  // WCAG luminance: black text above 0.179.
  const contrast = (color) => color.match(/[\d.]+/g).slice(0, 3).reduce((l, v, i) =>
    l + [0.2126, 0.7152, 0.0722][i] * ((v /= 255) < 0.04 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4),
  0) > 0.179 ? '#000' : '#fff';

  function mount() {
    const host = el('supportwidget-button');
    root = host.attachShadow({ mode: 'open' });
    try {
      // Not an inline style: strict host CSPs allow it.
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.append(el('style', data.nonce ? { nonce: data.nonce } : {}, [CSS]));
    }
    button = el('button', { type: 'button', class: 'b', 'aria-haspopup': 'dialog' },
      [data.label || T[0]]);
    on(button, 'click', () => open(false));
    root.append(button);
    d.body.append(host);
    if (data.color) {
      button.style.background = data.color;
      if (button.style.background) {
        button.style.color = contrast(getComputedStyle(button).backgroundColor);
      } else {
        warn('bad data-color');
      }
    }
    on(root, 'keydown', (e) => {
      if (e.key === 'Escape' && overlay && !overlay.hidden) close();
    });
  }

  function build() {
    heading = el('h2', { id: 't', tabindex: '-1' }, [T[1]]);
    const x = el('button', { type: 'button', 'aria-label': T[2] }, ['\u2715']);
    on(x, 'click', close);
    tabs = [el('button', { type: 'button' }, [T[3]]),
      el('button', { type: 'button', class: 'e' }, [T[4]])];
    tabs.forEach((tab, i) => on(tab, 'click', () => { load(!!i); frame.focus(); }));
    note = el('p', { class: 'n', role: 'status' });
    frame = el('iframe', { title: T[5], allow: 'display-capture' });
    on(frame, 'load', loaded);
    // Sentinels trap Tab, also leaving the iframe.
    const first = el('span', { tabindex: '0' });
    const last = el('span', { tabindex: '0' });
    on(first, 'focus', () => frame.focus());
    on(last, 'focus', () => x.focus());
    overlay = el('div', { class: 'o', hidden: '' }, [
      el('div', { class: 'd', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 't' },
        [first, el('header', {}, [heading, x]), el('nav', {}, tabs), note, frame, last])
    ]);
    on(overlay, 'click', (e) => e.target === overlay && close());
  }

  function url(em, alone) {
    const q = (alone ? '' : '&embed=1') + (data.locale ? '&locale=' + data.locale : '');
    return origin + '/s/' + key + (em ? '/emergency' : '') + q.replace('&', '?');
  }

  function mark(em) {
    emergency = em;
    tabs.forEach((tab, i) => tab.setAttribute('aria-pressed', !!i === em));
  }

  function say(text, link) {
    note.textContent = text;
    if (link) note.replaceChildren(el('a', { href: link, target: '_blank' }, [text]));
  }

  function load(em) {
    ready = done = false;
    say('');
    mark(em);
    frame.src = url(em);
    // Iframe failures are invisible: probe the service.
    fetch(origin + '/healthz', { mode: 'no-cors', cache: 'no-store', signal: AbortSignal.timeout(5000) })
      .catch(() => ready || say([T[6], data.phone, data.email].filter(Boolean).join(' ')));
  }

  function loaded() {
    send();
    // No "ready" from the form: refused or failed.
    setTimeout(() => ready || note.textContent || say(T[7], url(emergency, true)), 3000);
  }

  function send() {
    frame.contentWindow.postMessage({
      type: P + 'context',
      page: {
        url: location.href,
        title: d.title,
        viewport: innerWidth + 'x' + innerHeight,
        userAgent: navigator.userAgent,
        referrer: d.referrer
      },
      user: { name: data.userName, email: data.userEmail, signature: data.userSignature },
      context,
      draft: draft()
    }, origin);
  }

  function open(em) {
    if (!overlay) build();
    if (!ready || done || em !== emergency) load(em);
    // Attach once, src set: moving an iframe reloads it.
    if (!overlay.isConnected) root.append(overlay);
    overlay.hidden = false;
    (ready ? frame : heading).focus();
  }

  function close() {
    if (overlay && !overlay.hidden) {
      overlay.hidden = true;
      button.focus();
    }
  }

  on(w, 'message', (e) => {
    const m = e.data || {};
    if (e.origin !== origin || !frame || e.source !== frame.contentWindow) return;
    if (m.type === P + 'ready') {
      ready = true;
      say('');
      mark(!!m.emergency);
      send();
      if (root.activeElement === heading) frame.focus();
    } else if (m.type === P + 'close') {
      close();
    } else if (m.type === P + 'capture') {
      // Screenshots show the page, not the dialog.
      overlay.classList.toggle('c', m.hide);
    } else if (m.type === P + 'draft') {
      draft(m.draft);
    } else if (m.type === P + 'submitted') {
      done = true;
      draft(null);
      say(T[8].replace('{ref}', m.reference));
    }
  });

  function api(command) {
    if (command === 'close') close();
    else open(command === 'emergency');
  }
  api.loaded = true;
  w.supportwidget = api;

  function start() {
    mount();
    // Replay a stub's queue (see README).
    ((stub && stub.q) || []).forEach((args) => api(...args));
  }
  if (d.body) start(); else on(d, 'DOMContentLoaded', start);
})(window, document);
