/* supportwidget hosted form: page details from the widget, screenshots, upload progress.
 * The form works without this script; everything here is an improvement on top. */
(() => {
  'use strict';

  const d = document;
  const w = window;
  const P = 'supportwidget:';
  const MAX_SIDE = 2560;
  const TYPES = /^image\/(png|jpeg|webp|gif)$/;
  const DRAFT_FIELDS = ['subject', 'description', 'needed_by', 'urgency_note', 'name', 'email',
    'callback_phone'];

  let config = {};
  try {
    config = JSON.parse(d.getElementById('sw-config').textContent);
  } catch (e) {
    // No config (an error page): nothing to talk to.
  }
  const toOrigin = (value) => {
    try {
      return new URL(value).origin;
    } catch (e) {
      return 'null';
    }
  };
  // Messages come from the server in the page's language; '{name}' marks a file name.
  const S = config.strings || {};
  const t = (key, name) => (S[key] || key).replace('{name}', name);
  // Compare origins the way browsers report them: "https://a.test", no path or slash.
  const allowed = (config.allowedOrigins || []).map(toOrigin).filter((o) => o !== 'null');
  const embedded = w.parent !== w && (config.embedded || d.body.classList.contains('embedded'));
  let parentOrigin = null;

  function tell(message) {
    if (!embedded) return;
    // Only post to the embedding page when it is one of the site's own origins.
    const ancestors = w.location.ancestorOrigins;
    const known = parentOrigin || (ancestors && ancestors.length ? ancestors[0] : null);
    const targets = known ? allowed.filter((o) => o === known) : allowed;
    targets.forEach((o) => w.parent.postMessage(message, o));
  }

  const text = (value, max) => (typeof value === 'string' ? value.slice(0, max) : '');

  function pageDetails(message) {
    const page = message.page || {};
    const user = message.user || {};
    const details = {
      url: text(page.url, 2000),
      title: text(page.title, 300),
      viewport: text(page.viewport, 20),
      userAgent: text(page.userAgent, 500),
      referrer: text(page.referrer, 2000),
      user: { name: text(user.name, 120), email: text(user.email, 254),
        signature: text(user.signature, 500) },
      context: message.context && typeof message.context === 'object' ? message.context : {}
    };
    // The server refuses page details over 8 KiB: drop the free-form context first.
    if (JSON.stringify(details).length > 8000) details.context = { note: 'context too large' };
    return JSON.stringify(details);
  }

  function prefill(name, value) {
    const field = d.querySelector('#sw-form [name="' + name + '"]');
    if (field && !field.value && typeof value === 'string') field.value = value.slice(0, 254);
  }

  /* A user the site vouches for (signed by its secret): lock name and e-mail, and say so. */
  function lock(user) {
    const name = d.querySelector('#sw-form [name="name"]');
    const email = d.querySelector('#sw-form [name="email"]');
    if (!name || !email || name.readOnly) return;
    const cue = d.createElement('p');
    cue.className = 'verified';
    cue.id = 'identity-verified';
    cue.textContent = t('verified', user.name);
    name.closest('.field').before(cue);
    [name, email].forEach((field, i) => {
      field.value = i ? user.email : user.name;
      field.readOnly = true;
      field.setAttribute('aria-describedby',
        ((field.getAttribute('aria-describedby') || '') + ' identity-verified').trim());
    });
  }

  function checkIdentity(user) {
    if (!user.signature || !user.name || !user.email || !w.fetch) return;
    fetch(w.location.pathname.replace(/\/emergency$/, '') + '/identity' + w.location.search, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: user.name, email: user.email, signature: user.signature })
    }).then((response) => (response.ok ? response.json() : {}))
      .then((answer) => answer.verified === true && (lock(user), listMine(answer.requests)), () => {
        // Unverified or unreachable: the fields stay editable, as without a signature.
      });
  }

  /* "My requests": the signed-in person's latest tickets here, each linking its conversation. */
  function listMine(requests) {
    const form = d.getElementById('sw-form');
    if (!form || !Array.isArray(requests) || !requests.length || d.getElementById('mine')) return;
    const section = d.createElement('section');
    section.id = 'mine';
    section.setAttribute('aria-labelledby', 'mine-title');
    const title = d.createElement('h2');
    title.id = 'mine-title';
    title.textContent = t('mine');
    const list = d.createElement('ul');
    requests.forEach((request) => {
      const item = d.createElement('li');
      const link = d.createElement('a');
      link.href = request.url;
      link.target = '_blank';
      link.rel = 'noopener';
      link.textContent = request.reference + ': ' + request.subject;
      const state = d.createElement('span');
      state.className = 'state';
      state.textContent = request.status;
      item.append(link, ' ', state);
      list.append(item);
    });
    section.append(title, list);
    form.before(section);
  }

  /* Draft: survives closing the dialog or a reload, until the reference is shown.
   * Embedded, the widget keeps it: browsers often deny storage to third-party frames. */
  const DRAFT_KEY = 'supportwidget-draft';

  function restoreDraft(draft) {
    const form = d.getElementById('sw-form');
    if (!form || !draft || typeof draft !== 'object') return;
    DRAFT_FIELDS.forEach((name) => {
      const field = form.elements[name];
      if (field && !field.value && typeof draft[name] === 'string') field.value = draft[name];
    });
  }

  function saveDraft(form) {
    const draft = {};
    DRAFT_FIELDS.forEach((name) => {
      if (form.elements[name]) draft[name] = form.elements[name].value;
    });
    if (embedded) return tell({ type: P + 'draft', draft });
    try {
      w.sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
    } catch (e) {
      // Blocked or full storage: a lost draft is not worth an error.
    }
  }

  function storedDraft(clear) {
    try {
      if (clear) w.sessionStorage.removeItem(DRAFT_KEY);
      return JSON.parse(w.sessionStorage.getItem(DRAFT_KEY));
    } catch (e) {
      return null;
    }
  }

  w.addEventListener('message', (event) => {
    const message = event.data;
    if (!allowed.includes(event.origin) || !message || message.type !== P + 'context') return;
    parentOrigin = event.origin;
    const meta = d.querySelector('#sw-form [name="page_meta"]');
    if (meta) meta.value = pageDetails(message);
    restoreDraft(message.draft);
    const user = message.user || {};
    prefill('name', user.name);
    prefill('email', user.email);
    checkIdentity({ name: text(user.name, 120), email: text(user.email, 254),
      signature: text(user.signature, 500) });
    if (message.focus) focusStart();
  });

  /* The dialog opened on this page: start at what to read or fix first, else the first field,
   * unless the requester was already somewhere in it. */
  function focusStart() {
    if (d.activeElement && d.activeElement !== d.body) return;
    const start = d.querySelector('#sw-result, .form-errors, .check-notice') ||
      d.querySelector('#sw-form :is(input:not([type=hidden]), textarea, select)');
    if (start) start.focus();
  }

  d.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !event.defaultPrevented) tell({ type: P + 'close' });
  });

  tell({ type: P + 'ready', emergency: /\/emergency$/.test(w.location.pathname) });
  const result = d.getElementById('sw-result');
  if (result) {
    storedDraft(true);
    result.focus();
    // An emergency says where it stands ("the on-call team is being paged"), not just "sent".
    tell({ type: P + 'submitted', reference: result.dataset.reference, summary: result.dataset.summary });
  }

  const form = d.getElementById('sw-form');
  if (!form) return;
  const summary = d.querySelector('.form-errors, .check-notice');
  if (summary) {
    // After a refused submission, start at the list of problems (also scrolls it into view);
    // after our check loaded an "offline" site, at the question whether to page anyway.
    summary.tabIndex = -1;
    summary.focus();
  }
  if (!embedded) restoreDraft(storedDraft());
  form.addEventListener('input', () => saveDraft(form));

  /* A field's error goes once it is fixed: its message, its red, its line in the summary. */
  function fixed(field) {
    const box = field.closest('.field');
    if (!box || !box.classList.contains('has-error')) return;
    const ticked = field.type === 'radio' || field.type === 'checkbox';
    if (ticked ? !field.checked : !field.value.trim() || !field.checkValidity()) return;
    box.classList.remove('has-error');
    box.querySelectorAll('[aria-invalid]').forEach((f) => f.setAttribute('aria-invalid', 'false'));
    box.querySelectorAll('.error[id$="-error"]').forEach((e) => e.remove());
    const list = summary && summary.classList.contains('form-errors') ? summary : null;
    if (!list) return;
    const key = field.type === 'radio' ? field.name : field.id;
    const line = list.querySelector('li[data-field="' + key + '"]');
    if (line) line.remove();
    if (!list.querySelector('li, .error')) list.hidden = true;
  }
  // A summary link takes focus to its field (a bare fragment link only scrolls).
  if (summary) {
    summary.addEventListener('click', (event) => {
      const link = event.target.closest('a[href^="#"]');
      const target = link && d.getElementById(link.getAttribute('href').slice(1));
      if (!target) return;
      event.preventDefault();
      target.focus();
    });
  }
  form.addEventListener('input', (event) => fixed(event.target));
  form.addEventListener('change', (event) => fixed(event.target));

  /* The emergency form asks one question per category: show only the chosen category's. */
  const questions = form.querySelectorAll('[data-category]');
  function showQuestion() {
    const chosen = form.querySelector('input[name="category"]:checked');
    questions.forEach((q) => {
      q.hidden = !chosen || q.dataset.category !== chosen.value;
    });
  }
  form.querySelectorAll('input[name="category"]').forEach((radio) => {
    radio.addEventListener('change', showQuestion);
  });
  if (questions.length) showQuestion();

  /* Screenshots: picked, pasted or dropped; kept in `files` and mirrored into the input. */
  const input = form.querySelector('input[type="file"][name="screenshots"]');
  const zone = d.getElementById('screenshots-zone');
  const thumbs = d.getElementById('thumbs');
  const files = [];
  let waiting = 0;
  let pending = Promise.resolve();

  function alertBox(id) {
    const box = d.createElement('p');
    box.className = 'error';
    box.id = id;
    box.tabIndex = -1;
    box.setAttribute('role', 'alert');
    box.hidden = true;
    return box;
  }
  const notice = alertBox('screenshots-notice');
  if (zone) zone.append(notice);

  function say(message, box = notice) {
    box.textContent = message;
    box.hidden = !message;
  }

  function sync() {
    // DataTransfer is the only way to set input.files; keeps the no-XHR fallback honest.
    try {
      const transfer = new DataTransfer();
      files.forEach((file) => transfer.items.add(file));
      input.files = transfer.files;
    } catch (e) {
      // Old browser: the XHR path sends `files` itself.
    }
  }

  function rename(name, type) {
    const extension = type === 'image/png' ? '.png' : '.jpg';
    return (name || 'screenshot').replace(/\.[a-z0-9]+$/i, '') + extension;
  }

  async function shrink(file) {
    const bitmap = await createImageBitmap(file);
    const scale = MAX_SIDE / Math.max(bitmap.width, bitmap.height);
    if (scale >= 1) {
      bitmap.close();
      return file;
    }
    const canvas = d.createElement('canvas');
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    // Screenshots stay lossless PNG; photos (JPEG, WebP) become JPEG.
    const type = file.type === 'image/png' || file.type === 'image/gif' ? 'image/png' : 'image/jpeg';
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, type, 0.9));
    return blob ? new File([blob], rename(file.name, type), { type }) : file;
  }

  function render() {
    thumbs.textContent = '';
    files.forEach((file, index) => {
      const item = d.createElement('li');
      // The thumbnail is a button: it opens the editor that covers private details.
      const edit = d.createElement('button');
      edit.type = 'button';
      edit.className = 'edit';
      edit.setAttribute('aria-label', t('coverIn', file.name));
      edit.addEventListener('click', () => redact(index));
      const image = d.createElement('img');
      const url = URL.createObjectURL(file);
      image.src = url;
      image.alt = '';
      image.addEventListener('load', () => URL.revokeObjectURL(url));
      edit.append(image);
      const name = d.createElement('span');
      name.textContent = file.name;
      const remove = d.createElement('button');
      remove.type = 'button';
      remove.className = 'remove';
      remove.textContent = t('remove');
      remove.setAttribute('aria-label', t('removeFile', file.name));
      remove.addEventListener('click', () => {
        files.splice(index, 1);
        render();
        sync();
        say('');
        input.focus();
      });
      item.append(edit, name, remove);
      thumbs.append(item);
    });
  }

  /* Screenshots kept by the server from a refused try: a Remove button ticks the box that
   * tells the server to drop one (the box is what works without this script). */
  const keptItems = Array.from(d.querySelectorAll('#kept-thumbs li'));
  const keptCount = () => keptItems.filter((item) => !item.hidden).length;
  keptItems.forEach((item) => {
    const label = item.querySelector('label.drop');
    const box = label.querySelector('input');
    const remove = d.createElement('button');
    remove.type = 'button';
    remove.className = 'remove';
    remove.textContent = t('remove');
    remove.setAttribute('aria-label', label.textContent.trim());
    remove.addEventListener('click', () => {
      box.checked = true;
      item.hidden = true;
      say('');
      input.focus();
    });
    label.hidden = true;
    item.append(remove);
  });

  function add(list) {
    Array.from(list).forEach((file) => {
      if (!TYPES.test(file.type)) {
        say(t('notImage', file.name));
        return;
      }
      if (keptCount() + files.length + waiting >= config.maxFiles) {
        say(t('tooMany'));
        return;
      }
      waiting += 1;
      pending = pending.then(() => shrink(file)).then((image) => {
        if (config.maxBytes && image.size > config.maxBytes) {
          say(t('tooLarge', file.name));
        } else {
          files.push(image);
        }
      }, () => say(t('unreadable', file.name))).then(() => {
        waiting -= 1;
        render();
        sync();
      });
    });
  }

  /* Redaction: black boxes drawn over a screenshot before it leaves the browser. */
  let editor = null;

  function button(label, className) {
    const node = d.createElement('button');
    node.type = 'button';
    node.className = className;
    node.textContent = label;
    return node;
  }

  function editorDialog() {
    const dialog = d.createElement('dialog');
    dialog.className = 'redact';
    dialog.setAttribute('aria-labelledby', 'redact-title');
    dialog.setAttribute('aria-describedby', 'redact-hint');
    const title = d.createElement('h2');
    title.id = 'redact-title';
    title.textContent = t('coverTitle');
    const hint = d.createElement('p');
    hint.id = 'redact-hint';
    hint.className = 'hint';
    hint.textContent = t('coverHint');
    const canvas = d.createElement('canvas');
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', t('canvas'));
    const undo = button(t('undo'), 'secondary');
    const cancel = button(t('cancel'), 'secondary');
    const done = button(t('done'), 'primary');
    const actions = d.createElement('div');
    actions.className = 'actions';
    actions.append(undo, cancel, done);
    dialog.append(title, hint, canvas, actions);
    form.append(dialog);
    return { dialog, canvas, undo, cancel, done, boxes: [], bitmap: null, index: -1 };
  }

  function paint(extra) {
    const context = editor.canvas.getContext('2d');
    context.drawImage(editor.bitmap, 0, 0);
    context.fillStyle = '#000';
    editor.boxes.concat(extra ? [extra] : []).forEach((b) => context.fillRect(b.x, b.y, b.w, b.h));
    editor.undo.disabled = !editor.boxes.length;
  }

  function bindDrawing(canvas) {
    let start = null;
    const point = (event) => {
      const rect = canvas.getBoundingClientRect();
      const scale = canvas.width / rect.width;
      return { x: (event.clientX - rect.left) * scale, y: (event.clientY - rect.top) * scale };
    };
    const box = (a, b) => ({ x: Math.min(a.x, b.x), y: Math.min(a.y, b.y),
      w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) });
    canvas.addEventListener('pointerdown', (event) => {
      start = point(event);
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener('pointermove', (event) => start && paint(box(start, point(event))));
    canvas.addEventListener('pointerup', (event) => {
      if (!start) return;
      const drawn = box(start, point(event));
      start = null;
      // A click is not a box: ignore anything smaller than a few pixels.
      if (drawn.w > 2 && drawn.h > 2) editor.boxes.push(drawn);
      paint();
    });
  }

  function buildEditor() {
    editor = editorDialog();
    const { dialog, canvas, undo, cancel, done } = editor;
    bindDrawing(canvas);
    undo.addEventListener('click', () => {
      editor.boxes.pop();
      paint();
      // Undo disables itself at the last box: keep focus in the dialog.
      if (undo.disabled) done.focus();
    });
    cancel.addEventListener('click', () => closeEditor(false));
    done.addEventListener('click', () => closeEditor(true));
    dialog.addEventListener('keydown', (event) => {
      if (event.key !== 'Escape') return;
      // Handled here so the widget's dialog around this page stays open.
      event.preventDefault();
      closeEditor(false);
    });
  }

  async function redact(index) {
    if (!editor) buildEditor();
    const bitmap = await createImageBitmap(files[index]).catch(() => null);
    if (!bitmap) return say(t('unreadable', files[index].name));
    Object.assign(editor, { bitmap, index, boxes: [] });
    editor.canvas.width = bitmap.width;
    editor.canvas.height = bitmap.height;
    paint();
    editor.dialog.showModal();
    editor.cancel.focus();
  }

  async function closeEditor(keep) {
    const { dialog, canvas, boxes, index } = editor;
    if (keep && boxes.length) {
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
      const name = rename(files[index].name, 'image/png');
      if (!blob || (config.maxBytes && blob.size > config.maxBytes)) {
        say(t('coveredTooLarge', name));
      } else {
        files[index] = new File([blob], name, { type: 'image/png' });
        render();
        sync();
      }
    }
    editor.bitmap.close();
    dialog.close();
    const edit = thumbs.querySelectorAll('.edit')[index];
    if (edit) edit.focus();
  }

  /* "Capture this page": one frame of the current tab, through the browser's own prompt. */
  async function grab(stream) {
    const video = d.createElement('video');
    video.muted = true;
    video.srcObject = stream;
    // A still tab may send no new frame: wait for one, but never for long.
    const frame = () => new Promise((resolve) => {
      setTimeout(resolve, 300);
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(resolve);
    });
    // Never leave the widget's dialog hidden: a stream that never plays is a failure.
    await Promise.race([video.play(), new Promise((resolve, reject) => setTimeout(reject, 5000))]);
    await frame();
    await frame();
    const canvas = d.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    return new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
  }

  async function capture() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, preferCurrentTab: true });
    } catch (e) {
      // The requester said no: nothing to report.
      if (e.name !== 'NotAllowedError') say(t('captureFailed'));
      return;
    }
    // Hide the widget's dialog for the shot: the page behind it is what matters.
    tell({ type: P + 'capture', hide: true });
    const blob = await grab(stream).catch(() => null);
    stream.getTracks().forEach((track) => track.stop());
    tell({ type: P + 'capture', hide: false });
    if (!blob) return say(t('captureFailed'));
    add([new File([blob], 'page-capture.png', { type: 'image/png' })]);
  }

  if (input && zone && thumbs) {
    const media = navigator.mediaDevices;
    // A frame without allow="display-capture" would only ever be refused: offer nothing.
    const policy = d.permissionsPolicy || d.featurePolicy;
    if (media && media.getDisplayMedia && !(policy && !policy.allowsFeature('display-capture'))) {
      const shot = button(t('capture'), 'secondary capture');
      shot.addEventListener('click', capture);
      input.after(shot);
    }
    const hint = d.getElementById('screenshots-hint');
    if (hint) hint.textContent += ' ' + t('dropHint');
    input.setAttribute('aria-describedby',
      (input.getAttribute('aria-describedby') || '') + ' screenshots-notice');
    input.addEventListener('change', () => {
      const picked = Array.from(input.files);
      sync(); // the picker replaced the list: put the kept files back, then add the new ones
      add(picked);
    });
    d.addEventListener('paste', (event) => {
      const pasted = event.clipboardData && event.clipboardData.files;
      if (pasted && pasted.length) {
        event.preventDefault();
        add(pasted);
      }
    });
    zone.addEventListener('dragover', (event) => {
      event.preventDefault();
      zone.classList.add('dragover');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('dragover'));
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      zone.classList.remove('dragover');
      add(event.dataTransfer.files);
    });
    // A file dropped beside the zone must not navigate away from a half-filled form.
    d.addEventListener('dragover', (event) => event.preventDefault());
    d.addEventListener('drop', (event) => event.preventDefault());
  }

  /* Submit with XHR so the progress bar can move; the server's page replaces this one. */
  const progress = d.getElementById('progress');
  const bar = progress && progress.querySelector('progress');
  const submit = form.querySelector('[type="submit"]');
  const sendNotice = alertBox('send-notice');
  submit.before(sendNotice);
  let busy = false;

  function failed() {
    busy = false;
    submit.disabled = false;
    if (progress) progress.hidden = true;
    say(t('sendFailed'), sendNotice);
    sendNotice.focus();
  }

  function send() {
    const body = new FormData(form);
    body.delete('screenshots');
    files.forEach((file) => body.append('screenshots', file, file.name));
    const request = new XMLHttpRequest();
    request.open('POST', form.action);
    request.timeout = 120000;
    request.upload.addEventListener('progress', (event) => {
      if (bar && event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
    });
    request.addEventListener('load', () => {
      if (!/text\/html/.test(request.getResponseHeader('Content-Type') || '')) return failed();
      // Server-rendered errors and the answer page take over, as after a normal post.
      d.open();
      d.write(request.responseText);
      d.close();
    });
    request.addEventListener('error', failed);
    request.addEventListener('timeout', failed);
    if (progress) progress.hidden = false;
    request.send(body);
  }

  form.addEventListener('submit', (event) => {
    if (!w.FormData || !w.XMLHttpRequest) return;
    event.preventDefault();
    if (busy) return;
    busy = true;
    submit.disabled = true;
    say('', sendNotice);
    saveDraft(form);
    pending.then(send);
  });
})();
