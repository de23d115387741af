import { describe, expect, it } from 'vitest';
import { decodeXmlText } from './xml-text.ts';

describe('decodeXmlText', () => {
  it('decodes the five predefined entities and character references, in one pass', () => {
    expect(decodeXmlText('&lt;a&gt; &amp; &quot;b&quot; &apos;c&apos;')).toBe(`<a> & "b" 'c'`);
    expect(decodeXmlText('&#65;&#x42;&#x1F600;')).toBe('AB😀');
    expect(decodeXmlText('&amp;lt; &amp;#65;')).toBe('&lt; &#65;');
  });

  it('leaves any other entity, and references to characters XML forbids, as literal text', () => {
    expect(decodeXmlText('&lol9; &shadow; &nbsp;')).toBe('&lol9; &shadow; &nbsp;');
    expect(decodeXmlText('&#0; &#x1; &#xD800; &#x110000; &#;')).toBe('&#0; &#x1; &#xD800; &#x110000; &#;');
  });
});
