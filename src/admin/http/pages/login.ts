import { html, type SafeHtml } from '../html.js';

/** The login form; when no user exists yet it says how to create the first one. */
export function loginPage(options: { next: string; error?: string; hasUsers: boolean }): SafeHtml {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Log in · cxr-gateway</title>
        <link rel="stylesheet" href="/assets/console/console.css" />
        <link rel="icon" href="/assets/console/logo.svg" type="image/svg+xml" />
      </head>
      <body>
        <main class="narrow">
          <h1><img src="/assets/console/logo.svg" alt="" width="28" height="28" /> cxr-gateway console</h1>
          ${options.error ? html`<p id="flash" class="flash error" role="alert">${options.error}</p>` : ''}
          ${
            options.hasUsers
              ? ''
              : html`<div id="no-users" class="flash info">
                  <p>No console user exists yet. On the gateway's server, create the first admin:</p>
                  <pre>cxr-gateway admin add-user</pre>
                  <p>
                    (<code>cxr-gateway admin add-user --help</code> lists its name and role options; give the first user
                    the admin role.) Then log in here.
                  </p>
                </div>`
          }
          <form method="post" action="/login" id="login-form" class="stack">
            <input type="hidden" name="next" value="${options.next}" />
            <label for="login-user">User name</label>
            <input id="login-user" name="user" autocomplete="username" required autofocus />
            <label for="login-password">Password</label>
            <input id="login-password" name="password" type="password" autocomplete="current-password" required />
            <button type="submit" id="login-submit">Log in</button>
          </form>
        </main>
      </body>
    </html> `;
}
