import test from 'ava';
import { escapeHtml, html } from '../../../src/admin/http/html.js';

// Called through another name so that prettier does not lay out the markup under test.
const tag = html;

test('html escapes every interpolated value, in text and in attributes, unless it was built by html', (t) => {
  const evil = `<script>alert("x")</script>' onmouseover='x`;
  const out = tag`<p title="${evil}">${evil}</p>${tag`<b>${'&'}</b>`}${[1, ' & ', null, undefined, false]}`.text;
  t.is(
    out,
    '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;x">' +
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;x</p><b>&amp;</b>1 &amp; ',
  );
  t.is(escapeHtml('`a`'), '&#96;a&#96;');
});
