/**
 * Domain XML is untrusted input (a template stored in a backup, a domain a hypervisor reports):
 * every parser entry point leaves a DOCTYPE's own entities unexpanded, finishes at once on a
 * billion-laughs document, refuses external entities, and still reads XML's predefined
 * entities and character references the way libvirt writes them.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '#core/errors.ts';
import { cleanTemplate } from '#core/template.ts';
import { pointDisks, templateDisks, templateForHost } from '#core/template-host.ts';
import { parseDomainXml } from '#drivers/disk/domain-xml.ts';

/** Ten levels of ten: fully expanded, `&lol9;` is 10^10 characters. */
const LAUGHS = [
  '<!ENTITY lol0 "lollollollol">',
  ...Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`),
].join('\n  ');

/** A domain whose name, description and disk source use the DTD's entities. */
function hostile(dtd: string, name = 'web-1'): string {
  return `<?xml version="1.0"?>
<!DOCTYPE domain [
  ${dtd}
]>
<domain type='kvm'>
  <name>${name}</name>
  <description>&lol9; &shadow;</description>
  <memory unit='KiB'>131072</memory>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='&shadow;' label='&lol9;'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>`;
}

const ENTITIES = hostile(`${LAUGHS}\n  <!ENTITY shadow "/etc/shadow">`);

/** Every function that parses domain XML, answering what it produced as text. */
const ENTRY_POINTS: [string, (xml: string) => string][] = [
  ['parseDomainXml', (xml) => JSON.stringify(parseDomainXml(xml))],
  ['cleanTemplate', (xml) => cleanTemplate(xml, { name: 'copy-1' })],
  ['templateDisks', (xml) => JSON.stringify(templateDisks(xml))],
  ['pointDisks', (xml) => pointDisks(xml, new Map([[0, '/var/lib/lifeboat/restores/copy-1-disk-0.qcow2']]))],
  ['templateForHost', (xml) => templateForHost(xml, { hostCpus: 4 }).xml],
];

/** Runs `call`, failing when it takes more than a second (an expansion would take far longer). */
function quickly<T>(call: () => T): T {
  const started = performance.now();
  const result = call();
  expect(performance.now() - started).toBeLessThan(1000);
  return result;
}

describe.each(ENTRY_POINTS)('%s', (_name, parse) => {
  it('expands no internal entity: no laughs, no path hidden in an entity, no DTD in the output', () => {
    const out = quickly(() => parse(ENTITIES));
    expect(out).not.toContain('lollol');
    expect(out).not.toContain('/etc/shadow');
    expect(out).not.toContain('<!DOCTYPE');
    expect(out).not.toContain('<!ENTITY');
    expect(out.length).toBeLessThan(ENTITIES.length * 2);
  });

  it('refuses an external entity that names a file', () => {
    const xml = hostile(`<!ENTITY shadow SYSTEM "file:///etc/passwd">\n  <!ENTITY lol9 "x">`);
    expect(() => quickly(() => parse(xml))).toThrow(ValidationError);
  });
});

describe('what the parsers still decode', () => {
  const PLAIN = `<domain type='kvm'>
  <name>web-1</name>
  <description>a &amp; b &lt;c&gt; &#x41;&#66; &amp;lt; &bogus;</description>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/images/a&amp;b &apos;1&apos;.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>`;

  it('parseDomainXml reads predefined entities and character references, and nothing else', () => {
    const info = parseDomainXml(PLAIN);
    expect(info.disks[0]?.source).toBe("/var/lib/images/a&b '1'.qcow2");
    expect(parseDomainXml(ENTITIES).disks[0]?.source).toBe('&shadow;');
    expect(parseDomainXml(hostile('', '&lt;x&gt;')).name).toBe('<x>');
  });

  it('a template round trip keeps escaped text as it was, and an unknown entity as literal text', () => {
    const out = cleanTemplate(PLAIN, { name: 'copy-1' });
    expect(out).toContain('<description>a &amp; b &lt;c&gt; AB &amp;lt; &amp;bogus;</description>');
    expect(out).toContain(`<source file="/var/lib/images/a&amp;b &apos;1&apos;.qcow2"/>`);
    expect(templateDisks(PLAIN)).toEqual([{ id: 0, target: 'vda', volatile: false }]);
  });

  it('a restored path is escaped on the way out, never taken as markup', () => {
    const out = pointDisks(PLAIN, new Map([[0, `/r/x'/><qemu:commandline a='&amp;`]]));
    expect(out).toContain(`<source file="/r/x&apos;/&gt;&lt;qemu:commandline a=&apos;&amp;amp;"/>`);
    expect(parseDomainXml(out).disks[0]?.source).toBe(`/r/x'/><qemu:commandline a='&amp;`);
  });
});
