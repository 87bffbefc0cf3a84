import { readFileSync } from 'node:fs';
import { LIST_STATUS_FILTERS } from '../admin/dto/list-workflows.query.js';
import { CONSOLE_CSP } from './console.controller.js';

/*
 * The console's page and script, read as text: what a browser test would only catch by chance. The page runs
 * no inline script or style (the CSP allows neither), loads nothing but its own two files, and the script
 * writes no HTML (Trusted Types would make that throw at run time) and offers the list's real status filters.
 */
const asset = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');
const html = asset('console.html');
const js = asset('console.js');

describe('console assets', () => {
  it('the page: no inline script, style or handler; only its own script and style, by absolute path', () => {
    const scripts = [...html.matchAll(/<script\b([^>]*)>([^]*?)<\/script>/g)];
    expect(scripts.map((m) => m[1].trim())).toEqual(['type="module" src="/console/console.js"']);
    expect(scripts.every((m) => m[2].trim() === '')).toBe(true);
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i);
    const urls = [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    expect(urls.sort()).toEqual(['/console/console.css', '/console/console.js']);
  });

  it('the script: no HTML sinks, no eval, no other origin', () => {
    for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function', "setTimeout('", 'srcdoc']) {
      expect(js).not.toContain(sink);
    }
    expect(js).not.toMatch(/https?:\/\//);
  });

  it("the script's status filters are the list endpoint's", () => {
    const match = /const STATUS_FILTERS = (\[[^\]]*\]);/.exec(js);
    expect(match).not.toBeNull();
    expect(JSON.parse(match![1].replaceAll("'", '"'))).toEqual([...LIST_STATUS_FILTERS]);
  });

  it('the CSP allows this origin only, and no inline script or style', () => {
    expect(CONSOLE_CSP).toContain("default-src 'none'");
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toMatch(/unsafe-|\*|https?:|data:/);
  });
});
