"""The HTML pages `zdm serve` shows: setup (GitHub's App manifest flow) and status. Autoescaped Jinja2, no
scripts: every action is a plain form."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · zdm</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; }
  h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
  .lead { color: #59636e; margin-top: 0; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #d1d9e0; }
  th { background: #f6f8fa; font-weight: 600; }
  button, .button { background: #1f883d; color: #fff; border: 0; border-radius: 6px; padding: .55rem 1rem; font: inherit;
    font-weight: 600; cursor: pointer; text-decoration: none; display: inline-block; }
  button.secondary { background: #f6f8fa; color: #1f2328; border: 1px solid #d1d9e0; padding: .25rem .6rem; font-weight: 500; }
  input[type=text], input[type=password] { font: inherit; padding: .35rem .5rem; border: 1px solid #d1d9e0; border-radius: 6px; }
  .box { border: 1px solid #d1d9e0; border-radius: 6px; padding: 1rem 1.2rem; margin: 1rem 0; }
  .error { border-color: #cf222e; background: #ffebe9; } .ok { border-color: #1a7f37; background: #dafbe1; }
  .failure { color: #cf222e; font-weight: 600; } .success { color: #1a7f37; font-weight: 600; }
  code { background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; } .muted { color: #59636e; }
</style>
</head>
<body>
{% block body %}{% endblock %}
</body>
</html>
"""

_SETUP = """{% extends "layout.html" %}
{% block body %}
<h1>Set up zdm</h1>
<p class="lead">zdm reviews Prisma migrations in pull requests for PostgreSQL lock hazards and gates merging with a
check run named <code>zdm / migrations</code>.</p>
<div class="box">
<p>This server has no GitHub App yet. The button registers one on {{ github_host }} from zdm's manifest, with the
webhook pointing here (<code>{{ webhook_url }}</code>). GitHub then hands this server the App's id, private key and
webhook secret; zdm keeps them in its data directory and starts reviewing, no restart needed.</p>
<form method="post" action="{{ action }}">
  <input type="hidden" name="manifest" value="{{ manifest }}">
  <button type="submit" id="register">Register the GitHub App{% if organization %} for {{ organization }}{% endif %}</button>
</form>
<form method="get" action="/" style="margin-top: .8rem">
  <label class="muted">For an organisation instead of your account:
  <input type="text" name="organization" value="{{ organization }}" placeholder="organisation login" pattern="[A-Za-z0-9-]+"></label>
  <button type="submit" class="secondary">Use it</button>
</form>
</div>
<h2>What the App will be allowed to do</h2>
<table>
<tr><th>Permission</th><th>Access</th><th>Why</th></tr>
{% for name, access, why in permissions %}<tr><td>{{ name }}</td><td>{{ access }}</td><td>{{ why }}</td></tr>
{% endfor %}
</table>
<h2>Events it listens to</h2>
<p>{% for event in events %}<code>{{ event }}</code>{% if not loop.last %}, {% endif %}{% endfor %}</p>
<p class="muted">zdm only reads through GitHub's API: it never checks out or runs a pull request's code.</p>
{% endblock %}
"""

_REGISTERED = """{% extends "layout.html" %}
{% block body %}
<h1>{{ name }} is registered</h1>
<div class="box ok">
<p>GitHub created the App <strong>{{ name }}</strong> (id {{ app_id }}) owned by {{ owner }}. zdm stored its
credentials in its data directory and is ready to review.</p>
<p><a class="button" id="install" href="{{ install_url }}">Install it on your repositories</a></p>
</div>
<p>Then require the <code>zdm / migrations</code> check on the default branch (branch protection or a ruleset).</p>
{% endblock %}
"""

_MESSAGE = """{% extends "layout.html" %}
{% block body %}
<h1>{{ title }}</h1>
<div class="box{% if error %} error{% endif %}"><p>{{ message }}</p></div>
{% if link %}<p><a href="{{ link }}">{{ link_text }}</a></p>{% endif %}
{% endblock %}
"""

_LOGIN = """{% extends "layout.html" %}
{% block body %}
<h1>zdm</h1>
{% if error %}<div class="box error"><p>{{ error }}</p></div>{% endif %}
<form method="post" action="/login" class="box">
  <label>Admin token (<code>ZDM_ADMIN_TOKEN</code>): <input type="password" name="token" autofocus></label>
  <input type="hidden" name="next" value="{{ next }}">
  <button type="submit">Open</button>
</form>
{% endblock %}
"""

_STATUS = """{% extends "layout.html" %}
{% block body %}
<h1>{{ app_name }}</h1>
<p class="lead">zdm · {% if app_url %}<a href="{{ app_url }}">the App on GitHub</a> · {% endif %}queue: {{ queued }} waiting,
{{ running }} running, {{ scheduled }} scheduled</p>
{% if github_error %}<div class="box error"><p>GitHub did not answer: {{ github_error }}</p></div>{% endif %}

<h2>Installations</h2>
{% if installations %}<table>
<tr><th>Account</th><th>Repositories</th><th></th></tr>
{% for installation in installations %}<tr><td>{{ installation.account }}</td><td>{{ installation.repositories }}</td>
<td>{% if installation.suspended %}suspended{% endif %}</td></tr>
{% endfor %}</table>
{% else %}<p class="muted">Not installed anywhere yet.{% if install_url %} <a href="{{ install_url }}">Install it</a>.{% endif %}</p>{% endif %}

<h2>Last reviews</h2>
{% if reviews %}<table id="reviews">
<tr><th>Repository</th><th>Pull request</th><th>Job</th><th>Verdict</th><th>Duration</th><th>Finished</th></tr>
{% for job in reviews %}<tr><td>{{ job.repository }}</td><td>{% if job.pull_number %}#{{ job.pull_number }}{% endif %}</td>
<td>{{ job.kind }}{% if job.outcome != "ok" %} ({{ job.outcome }}){% endif %}</td>
<td class="{{ job.verdict or '' }}">{{ job.verdict or "–" }}</td><td>{{ "%.1f"|format(job.seconds) }} s</td>
<td>{{ job.finished_at|when }}</td></tr>
{% endfor %}</table>
{% else %}<p class="muted">No job has finished yet.</p>{% endif %}

<h2>Failed jobs</h2>
{% if failed %}<table id="failed">
<tr><th>Job</th><th>Reason</th><th></th></tr>
{% for job in failed %}<tr><td>{{ job.description }}</td><td><code>{{ job.reason }}</code></td>
<td><form method="post" action="/jobs/{{ job.id }}/retry"><button type="submit" class="secondary">Retry</button></form></td></tr>
{% endfor %}</table>
{% else %}<p class="muted">None.</p>{% endif %}
{% endblock %}
"""


def _when(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=DictLoader(
            {
                "layout.html": _LAYOUT,
                "setup.html": _SETUP,
                "registered.html": _REGISTERED,
                "message.html": _MESSAGE,
                "login.html": _LOGIN,
                "status.html": _STATUS,
            }
        ),
        autoescape=True,
        undefined=StrictUndefined,
    )
    environment.filters["when"] = _when
    return environment


def render(template: str, **values: Any) -> str:
    return _environment().get_template(template).render(**values)
