/**
 * Entity handling for libvirt XML. Every parser of domain XML runs fast-xml-parser with
 * `processEntities: false`, so a DOCTYPE's own entities (billion laughs, an entity hiding a
 * path) are never expanded; values are then decoded here with XML's fixed set only: the five
 * predefined entities and character references. Any other `&name;` stays literal text, and the
 * builder escapes it on the way out (`&amp;name;`), so nothing expands later either. Pure.
 */

const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** `&lt;` `&#60;` `&#x3C;`; a single pass, so `&amp;lt;` decodes to `&lt;`, never `<`. */
const REFERENCE = /&(?:(lt|gt|amp|quot|apos)|#([0-9]{1,7})|#x([0-9A-Fa-f]{1,6}));/g;

/** A value as the XML means it: predefined entities and character references decoded, nothing else. */
export function decodeXmlText(raw: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(REFERENCE, (whole, name?: string, decimal?: string, hex?: string) => {
    if (name) return PREDEFINED[name] ?? whole;
    const code = decimal !== undefined ? Number.parseInt(decimal, 10) : Number.parseInt(hex ?? '', 16);
    return isXmlChar(code) ? String.fromCodePoint(code) : whole;
  });
}

/** A character XML 1.0 allows (`Char` production): no NUL, no other C0 control but tab and newlines. */
function isXmlChar(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}
