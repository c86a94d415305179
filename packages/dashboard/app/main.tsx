/** The dashboard's single-page app: session, navigation by URL hash, the four pages. */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, loadSession, login, post, type Session } from './api.js';
import { Notice } from './components.js';
import { DeadLettersPage } from './pages/dead-letters.js';
import { JobPage } from './pages/job.js';
import { JobsPage } from './pages/jobs.js';
import { PathsPage } from './pages/paths.js';

type Route =
  | { page: 'jobs' }
  | { page: 'job'; id: string }
  | { page: 'paths' }
  | { page: 'dead-letters' };

function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  const job = /^\/jobs\/(.+)$/.exec(path);
  if (job) return { page: 'job', id: decodeURIComponent(job[1]!) };
  if (path === '/paths') return { page: 'paths' };
  if (path === '/dead-letters') return { page: 'dead-letters' };
  return { page: 'jobs' };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => {
      setRoute(parseRoute(location.hash));
      document.getElementById('main')?.focus();
    };
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

function App() {
  const [session, setSession] = useState<Session>();
  const [error, setError] = useState<string>();
  const refresh = () =>
    loadSession().then(setSession, (err: unknown) => setError((err as Error).message));
  useEffect(() => {
    void refresh();
  }, []);
  if (error) return <Notice kind="error">The dashboard cannot reach its API: {error}</Notice>;
  if (!session) return <p class="muted pad">Loading…</p>;
  if (!session.authenticated) return <Login session={session} onSignedIn={refresh} />;
  return <Shell session={session} />;
}

function Login({ session, onSignedIn }: { session: Session; onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string>();
  const what = session.method === 'hmac-key' ? 'HMAC key' : 'API token';
  return (
    <main class="login">
      <form
        class="card"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await login(token);
            onSignedIn();
          } catch (err) {
            setError(
              err instanceof ApiError && err.status === 401
                ? `Wrong ${what}.`
                : (err as Error).message,
            );
          }
        }}
      >
        <h1>Switchyard</h1>
        <p>Sign in with the {what} of the Switchyard API.</p>
        <label>
          {what}
          <input
            type="password"
            autocomplete="current-password"
            required
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </label>
        {error ? <Notice kind="error">{error}</Notice> : null}
        <button type="submit" class="button primary">
          Sign in
        </button>
      </form>
    </main>
  );
}

function Shell({ session }: { session: Session }) {
  const route = useRoute();
  const links: [string, string, Route['page'][]][] = [
    ['#/', 'Jobs', ['jobs', 'job']],
    ['#/paths', 'Paths', ['paths']],
    ['#/dead-letters', 'Dead letters', ['dead-letters']],
  ];
  return (
    <>
      <button
        type="button"
        class="skip button"
        onClick={() => document.getElementById('main')?.focus()}
      >
        Skip to content
      </button>
      <header class="top">
        <a class="brand" href="#/">
          <span class="logo" aria-hidden="true">
            ⇶
          </span>{' '}
          Switchyard
        </a>
        <nav aria-label="Main">
          {links.map(([href, label, pages]) => (
            <a href={href} aria-current={pages.includes(route.page) ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        {session.method !== 'none' ? (
          <button
            type="button"
            class="button subtle"
            onClick={async () => {
              await post('/logout');
              location.reload();
            }}
          >
            Sign out
          </button>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        {route.page === 'jobs' ? (
          <JobsPage transports={session.transports ?? []} jobNames={session.jobNames ?? []} />
        ) : route.page === 'job' ? (
          <JobPage key={route.id} id={route.id} />
        ) : route.page === 'paths' ? (
          <PathsPage />
        ) : (
          <DeadLettersPage transports={session.deadLetterTransports ?? []} />
        )}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
