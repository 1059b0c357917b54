/**
 * Objects.list `matchGlob`: Cloud Storage's glob syntax compiled to a RegExp over whole names.
 */
import { invalidArgument } from './resources.js';

/**
 * Compiles an Objects.list `matchGlob` (Cloud Storage docs, "List objects" → "Filter by object
 * glob") into a whole-name RegExp:
 *
 * - `*` any run of characters except `/`; `**` any run including `/`, and `**` standing as a
 *   whole segment (`a/**` + `/b`) also matches no segment at all, so `a/b` matches it;
 * - `?` one character except `/`;
 * - `[abc]`, `[a-z]`, `[!abc]` / `[^abc]` one character of (or, never `/`, not of) a set;
 * - `{a,b}` either alternative (alternatives may hold wildcards and nest);
 * - `\x` the character x itself.
 *
 * Written here rather than taken from picomatch/minimatch: those follow shell conventions that
 * GCS does not (an optional trailing slash, `(…)`/`+(…)` groups, `x/*` not matching `x/`,
 * picomatch's literal reading of `[!ab]`), and an object listing must match exactly what GCS
 * matches. A malformed glob is a 400, never "match everything".
 */
export function compileGlob(glob: string): RegExp {
  let at = 0;
  const fail = (why: string): never => {
    throw invalidArgument(`Invalid matchGlob '${glob}': ${why}.`);
  };

  const parse = (inBraces: boolean): string => {
    let out = '';
    while (at < glob.length) {
      const char = glob[at] as string;
      if (inBraces && (char === ',' || char === '}')) return out;
      at += 1;
      switch (char) {
        case '\\': {
          if (at >= glob.length) fail('a trailing backslash escapes nothing');
          out += escapeRegExp(glob[at] as string);
          at += 1;
          break;
        }
        case '*': {
          if (glob[at] !== '*') {
            out += '[^/]*';
            break;
          }
          while (glob[at] === '*') at += 1;
          const segmentStart = at - 2 === 0 || glob[at - 3] === '/';
          if (segmentStart && glob[at] === '/') {
            // `**/` as a whole segment: zero or more directories.
            at += 1;
            out += '(?:.*/)?';
          } else {
            out += '.*';
          }
          break;
        }
        case '?':
          out += '[^/]';
          break;
        case '[':
          out += parseClass();
          break;
        case '{': {
          const alternatives = [parse(true)];
          while (glob[at] === ',') {
            at += 1;
            alternatives.push(parse(true));
          }
          if (glob[at] !== '}') fail('an unclosed {');
          at += 1;
          out += `(?:${alternatives.join('|')})`;
          break;
        }
        default:
          out += escapeRegExp(char);
      }
    }
    if (inBraces) fail('an unclosed {');
    return out;
  };

  const parseClass = (): string => {
    let negate = false;
    if (glob[at] === '!' || glob[at] === '^') {
      negate = true;
      at += 1;
    }
    let body = '';
    let first = true;
    while (at < glob.length) {
      let char = glob[at] as string;
      // A `]` right after `[` or `[!` is a member, as in POSIX brackets.
      if (char === ']' && !first) {
        at += 1;
        if (body === '') fail('an empty [] set');
        // Like `*` and `?`, a negated set stays within one path segment.
        return negate ? `[^${body}/]` : `[${body}]`;
      }
      first = false;
      at += 1;
      if (char === '\\') {
        if (at >= glob.length) break;
        char = glob[at] as string;
        at += 1;
      }
      body += char === '-' && body !== '' && glob[at] !== ']' ? '-' : escapeClassChar(char);
    }
    return fail('an unclosed [');
  };

  const source = parse(false);
  try {
    return new RegExp(`^${source}$`, 's');
  } catch {
    // e.g. a reversed range such as [z-a]
    return fail('not a valid pattern');
  }
}

function escapeRegExp(char: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(char) ? `\\${char}` : char;
}

function escapeClassChar(char: string): string {
  return /[\\\]^[-]/.test(char) ? `\\${char}` : char;
}
