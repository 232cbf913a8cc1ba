// Dashboard niceties that work without it too: a copy button for embed snippets.
(function () {
  'use strict';
  document.querySelectorAll('button.copy[data-copy]').forEach((button) => {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener('click', () => {
      navigator.clipboard.writeText(source.value).then(
        () => { button.textContent = 'Copied'; },
        () => { source.select(); }
      );
    });
  });
})();
