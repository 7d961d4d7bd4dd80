// The console's only script (served from the package: no CDN, no inline script under the CSP). Every page works
// without it; it adds confirmations before actions and keeps the rules editor's Tab key in the textarea.
'use strict';

document.addEventListener('submit', (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  const button = event.submitter;
  const question =
    (button && button.getAttribute('data-confirm-submit')) || form.getAttribute('data-confirm') || '';
  if (question !== '' && !window.confirm(question)) event.preventDefault();
});

const editor = document.getElementById('rules-text');
if (editor instanceof HTMLTextAreaElement) {
  editor.addEventListener('keydown', (event) => {
    if (event.key !== 'Tab' || event.shiftKey || event.ctrlKey || event.altKey || event.metaKey) return;
    event.preventDefault();
    const { selectionStart, selectionEnd, value } = editor;
    editor.value = `${value.slice(0, selectionStart)}  ${value.slice(selectionEnd)}`;
    editor.selectionStart = editor.selectionEnd = selectionStart + 2;
  });
}

// The flash message of a form's redirect is shown once: drop it from the address so a reload does not repeat it.
if (window.location.search.includes('flash=')) {
  const url = new URL(window.location.href);
  url.searchParams.delete('flash');
  url.searchParams.delete('flashKind');
  window.history.replaceState(null, '', url.pathname + url.search);
}
