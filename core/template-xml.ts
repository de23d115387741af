/**
 * A small ordered XML tree for editing libvirt domain XML without losing anything the edits do
 * not touch: element order, comments, namespaced metadata and whitespace survive a parse/build
 * round trip (fast-xml-parser with `preserveOrder`). Regular expressions would break on attribute
 * order, quoting or nesting; this does not. Pure: no I/O.
 */
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { ValidationError } from './errors.ts';
import { decodeXmlText } from './xml-text.ts';

/** One node of the ordered tree: `{ tag: children, ':@': attributes }`, `{ '#text': s }` or a comment. */
export type XmlNode = Record<string, unknown>;

const OPTIONS = {
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  preserveOrder: true,
  // Values stay text: a uuid, a MAC or a cpuset must never turn into a number.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  commentPropName: '#comment',
} as const;

// A DOCTYPE's entities are never expanded (see xml-text.ts); the builder escapes every value.
const parser = new XMLParser({ ...OPTIONS, processEntities: false });
const builder = new XMLBuilder({ ...OPTIONS, processEntities: true, format: false, suppressEmptyNode: true });

/** Parses XML into its ordered tree; throws ValidationError when it does not parse. */
export function parseXml(xml: string): XmlNode[] {
  let doc: XmlNode[];
  try {
    doc = parser.parse(xml) as XmlNode[];
  } catch (error) {
    throw new ValidationError(`template: the domain XML does not parse: ${(error as Error).message}`, {
      cause: error,
    });
  }
  decodeTree(doc);
  return doc;
}

/** Decodes text and attribute values in place (comments stay as written). */
function decodeTree(nodes: XmlNode[]): void {
  for (const node of nodes) {
    const attrs = (node[':@'] ?? {}) as Record<string, unknown>;
    for (const [name, value] of Object.entries(attrs)) {
      if (typeof value === 'string') attrs[name] = decodeXmlText(value);
    }
    if (typeof node['#text'] === 'string') node['#text'] = decodeXmlText(node['#text']);
    const tag = tagOf(node);
    if (tag !== undefined && Array.isArray(node[tag])) decodeTree(node[tag] as XmlNode[]);
  }
}

/** The XML text of a tree. */
export function buildXml(nodes: XmlNode[]): string {
  return builder.build(nodes) as string;
}

/** Tag of an element node; undefined for text and comments. */
export function tagOf(node: XmlNode): string | undefined {
  const key = Object.keys(node).find((k) => k !== ':@');
  return key === undefined || key === '#text' || key === '#comment' ? undefined : key;
}

/** Child nodes of an element (the live array: edits change the tree). */
export function childrenOf(node: XmlNode): XmlNode[] {
  const tag = tagOf(node);
  if (tag === undefined) return [];
  const list = node[tag];
  if (Array.isArray(list)) return list as XmlNode[];
  node[tag] = [];
  return node[tag] as XmlNode[];
}

/** Child elements of `node` named `tag`. */
export function elements(node: XmlNode, tag: string): XmlNode[] {
  return childrenOf(node).filter((c) => tagOf(c) === tag);
}

/** First child element named `tag`. */
export function element(node: XmlNode, tag: string): XmlNode | undefined {
  return childrenOf(node).find((c) => tagOf(c) === tag);
}

/** Attribute value, or undefined. */
export function attr(node: XmlNode | undefined, name: string): string | undefined {
  const attrs = node?.[':@'] as Record<string, unknown> | undefined;
  const value = attrs?.[`@_${name}`];
  return typeof value === 'string' ? value : undefined;
}

/** Sets (or, with undefined, removes) an attribute. */
export function setAttr(node: XmlNode, name: string, value: string | undefined): void {
  const attrs = (node[':@'] as Record<string, unknown> | undefined) ?? {};
  if (value === undefined) delete attrs[`@_${name}`];
  else attrs[`@_${name}`] = value;
  if (Object.keys(attrs).length > 0) node[':@'] = attrs;
  else delete node[':@'];
}

/** Text content of an element (its text children joined). */
export function textOf(node: XmlNode | undefined): string {
  if (!node) return '';
  return childrenOf(node)
    .map((c) => (typeof c['#text'] === 'string' ? c['#text'] : ''))
    .join('');
}

/** Replaces an element's children with one text node. */
export function setText(node: XmlNode, text: string): void {
  const tag = tagOf(node) as string;
  node[tag] = [{ '#text': text }];
}

/** A new element. */
export function newElement(
  tag: string,
  attrs: Record<string, string> = {},
  children: XmlNode[] = [],
): XmlNode {
  const node: XmlNode = { [tag]: children };
  for (const [name, value] of Object.entries(attrs)) setAttr(node, name, value);
  return node;
}

/**
 * Removes the child elements of `parent` for which `drop` is true, with the indentation before
 * each, so the output keeps libvirt's one-element-per-line layout. Returns the removed elements.
 */
export function removeChildren(parent: XmlNode, drop: (child: XmlNode) => boolean): XmlNode[] {
  const list = childrenOf(parent);
  const removed: XmlNode[] = [];
  for (let i = list.length - 1; i >= 0; i--) {
    const child = list[i] as XmlNode;
    if (tagOf(child) === undefined || !drop(child)) continue;
    removed.unshift(child);
    const before = list[i - 1];
    const blank = before && typeof before['#text'] === 'string' && before['#text'].trim() === '';
    list.splice(blank ? i - 1 : i, blank ? 2 : 1);
    if (blank) i--;
  }
  return removed;
}

/** Appends `child` to `parent`, indented like the parent's other element children. */
export function appendChild(parent: XmlNode, child: XmlNode): void {
  const list = childrenOf(parent);
  const blank = (n: XmlNode | undefined) => typeof n?.['#text'] === 'string' && n['#text'].trim() === '';
  let lastElement = -1;
  list.forEach((c, i) => {
    if (tagOf(c) !== undefined) lastElement = i;
  });
  const before = lastElement > 0 ? list[lastElement - 1] : undefined;
  const items: XmlNode[] = blank(before) ? [{ '#text': before?.['#text'] }, child] : [child];
  list.splice(blank(list.at(-1)) ? list.length - 1 : list.length, 0, ...items);
}

/** True when an element has no element children (only blank text or nothing). */
export function isEmptyElement(node: XmlNode): boolean {
  return childrenOf(node).every((c) => tagOf(c) === undefined && String(c['#text'] ?? '').trim() === '');
}

/** The root element named `tag` of a parsed document; throws ValidationError when absent. */
export function rootElement(doc: XmlNode[], tag: string): XmlNode {
  const root = doc.find((n) => tagOf(n) === tag);
  if (!root) throw new ValidationError(`template: no <${tag}> element`);
  return root;
}
