/**
 * Path templates of `google.api.http` rules, matched on the server side:
 *
 *   Template = "/" Segments [ Verb ] ;  Segment = "*" | "**" | LITERAL | Variable ;
 *   Variable = "{" FieldPath [ "=" Segments ] "}" ;  Verb = ":" LITERAL ;
 *
 * (grammar from google/api/http.proto). `{name}` is `{name=*}`; `*` is one segment, `**` the
 * rest of the path. A verb is matched apart from the segments, so `jobs/*` does not swallow
 * `jobs/j:run`.
 */
export interface PathTemplate {
  /** The template as written, e.g. `/v1/{parent=projects/*\/locations/*}/jobs`. */
  source: string;
  /** Field paths of the variables, in order, e.g. `['parent']` or `['job.name']`. */
  variables: string[];
  /** Matches the request path (without its verb) and captures one group per variable. */
  regex: RegExp;
  /** The custom verb (`run` for `…:run`), or '' for none. */
  verb: string;
}

const escapeRegex = (literal: string) => literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function segmentsRegex(segments: string): string {
  return segments
    .split('/')
    .map((segment) => {
      if (segment === '**') return '.+';
      if (segment === '*') return '[^/]+';
      if (!segment || segment.includes('*')) throw new Error(`bad path template segment "${segment}"`);
      return escapeRegex(segment);
    })
    .join('/');
}

/** Compiles one template; throws on a template outside the grammar (a proto that loaded wrong). */
export function compilePathTemplate(source: string): PathTemplate {
  if (!source.startsWith('/')) throw new Error(`path template must start with "/": ${source}`);
  // The verb follows the last "}" or "/", whichever is later.
  const tail = Math.max(source.lastIndexOf('}'), source.lastIndexOf('/'));
  const colon = source.indexOf(':', tail);
  const verb = colon >= 0 ? source.slice(colon + 1) : '';
  const path = colon >= 0 ? source.slice(0, colon) : source;

  const variables: string[] = [];
  let regex = '';
  let rest = path;
  while (rest.length > 0) {
    const open = rest.indexOf('{');
    const literal = open >= 0 ? rest.slice(0, open) : rest;
    // Literal stretch: "/v1/" or "/jobs" and the like, possibly with wildcards.
    if (literal) {
      regex += literal
        .split('/')
        .map((part) => (part ? segmentsRegex(part) : ''))
        .join('/');
    }
    if (open < 0) break;
    const close = rest.indexOf('}', open);
    if (close < 0) throw new Error(`unclosed variable in path template ${source}`);
    const [field = '', pattern = '*'] = rest.slice(open + 1, close).split('=');
    variables.push(field.trim());
    regex += `(${segmentsRegex(pattern.trim())})`;
    rest = rest.slice(close + 1);
  }
  return { source, variables, regex: new RegExp(`^${regex}$`), verb };
}

/** Splits a request path into what the segments match and its custom verb (`…/jobs/j:run` → `run`). */
export function splitVerb(path: string): { path: string; verb: string } {
  const slash = path.lastIndexOf('/');
  const colon = path.indexOf(':', slash);
  return colon >= 0 ? { path: path.slice(0, colon), verb: path.slice(colon + 1) } : { path, verb: '' };
}

/** The variables' values when `path` (already split from its verb) matches, else undefined. */
export function matchPathTemplate(
  template: PathTemplate,
  path: string,
  verb: string,
): Record<string, string> | undefined {
  if (template.verb !== verb) return undefined;
  const match = template.regex.exec(path);
  if (!match) return undefined;
  const values: Record<string, string> = {};
  template.variables.forEach((field, index) => {
    values[field] = decodeURIComponent(match[index + 1] as string);
  });
  return values;
}
