/** Hash routes (`#/jobs/ID?x=y`): every page has an address that can be bookmarked and shared. */
export interface Route {
  parts: string[];
  query: URLSearchParams;
}

export function currentRoute(): Route {
  const hash = window.location.hash.replace(/^#\/?/, '');
  const [path = '', search = ''] = hash.split('?');
  return {
    parts: path.split('/').filter(Boolean).map(decodeURIComponent),
    query: new URLSearchParams(search),
  };
}

export function navigate(hash: string): void {
  window.location.hash = hash;
}
