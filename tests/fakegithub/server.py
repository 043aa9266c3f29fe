"""The fake GitHub's HTTP side: the REST operations zdm calls and GraphQL, each request and response checked
against GitHub's published descriptions (a mismatch is recorded in `state.violations` and answered 422, as
GitHub would refuse it)."""

from __future__ import annotations

import asyncio
import base64
import copy
import html
import json
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import graphql
import jwt
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from openapi_core.testing import MockRequest, MockResponse

from tests.fakegithub import spec
from tests.fakegithub.state import (
    Call,
    CheckRun,
    GitHubState,
    IssueComment,
    PullRequest,
    RegisteredApp,
    Repository,
    Review,
    ReviewComment,
    User,
    blob_oid,
    diff_of,
    key_pair,
    now,
)

HOST = "https://api.github.com"
# GitHub's web pages the manifest flow goes through (github.com, not the API): HTML, not in the REST description.
WEB_PAGES = re.compile(
    r"^/(settings/apps/new|organizations/[^/]+/settings/apps/new|apps/[^/]+/installations/new)"
)
# The user the fake's web pages act as, in the browser.
WEB_USER = "octocat"
_PERMISSION_ORDER = ["none", "read", "triage", "write", "maintain", "admin"]


class HTTPError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.errors = errors


# GitHub refuses a comment body over 65,536 characters: 422 "Validation Failed" with this error, as it answers
# for issue comments (`resource` names what was being created).
MAX_BODY = 65_536


def _user_json(user: User) -> dict[str, Any]:
    data: dict[str, Any] = spec.example("issue-comment")["user"]
    data.update(login=user.login, id=user.id, type=user.type, node_id=f"U_{user.id}")
    return data


def create_app(state: GitHubState) -> FastAPI:
    app = FastAPI()

    def authenticate(request: Request, app_level: bool) -> int | None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not credential:
            raise HTTPError(401, "Requires authentication")
        if app_level:
            try:
                claims = jwt.decode(credential, state.public_key_pem, algorithms=["RS256"])
            except jwt.PyJWTError as error:
                raise HTTPError(401, f"A JSON web token could not be decoded: {error}") from error
            if str(claims.get("iss")) != str(state.app_id):
                raise HTTPError(401, "'Issuer' claim ('iss') must be the App's id")
            return None
        if credential not in state.tokens:
            raise HTTPError(401, "Bad credentials")
        return state.tokens[credential]

    def repo_for(owner: str, name: str, installation: int | None) -> Repository:
        repo = state.repos.get(f"{owner}/{name}")
        if repo is None or repo.installation_id != installation:
            raise HTTPError(404, "Not Found")
        return repo

    def pull_for(repo: Repository, number: int) -> PullRequest:
        if number not in repo.pulls:
            raise HTTPError(404, "Not Found")
        return repo.pulls[number]

    @app.middleware("http")
    async def check_and_log(request: Request, call_next: Any) -> Response:
        body = await request.body()
        path = request.url.path
        kind = "graphql" if path == "/graphql" else "web" if WEB_PAGES.match(path) else "rest"
        auth = request.headers.get("authorization", "")
        auth_kind = "none" if not auth else "app" if path.startswith("/app") else "installation"
        fault = state.take_fault(request.method, path)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status:
            with state.lock:
                state.calls.append(Call(request.method, path, fault.status, kind, auth_kind))
            return JSONResponse(fault.body, status_code=fault.status, headers=fault.headers)
        if kind == "rest":
            openapi_request = MockRequest(
                HOST,
                request.method.lower(),
                path,
                args=dict(request.query_params),
                data=body or None,
                headers=dict(request.headers),
                content_type=request.headers.get("content-type", "application/json").split(";")[0],
            )
            try:
                spec.openapi().validate_request(openapi_request)
            except Exception as error:
                detail = f"{request.method} {path}: request breaks GitHub's OpenAPI description: {error} {error.__cause__ or ''}"
                with state.lock:
                    state.violations.append(detail)
                    state.calls.append(Call(request.method, path, 422, kind, auth_kind))
                return JSONResponse({"message": "Validation Failed", "detail": detail}, status_code=422)
        request.state.body = body
        response: Response = await call_next(request)
        response_body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        if kind == "rest" and response.status_code < 300:
            try:
                spec.openapi().validate_response(
                    openapi_request,
                    MockResponse(
                        response_body, status_code=response.status_code, content_type="application/json"
                    ),
                )
            except Exception as error:
                with state.lock:
                    state.violations.append(
                        f"{request.method} {path}: the fake's response breaks the description: {error} {error.__cause__ or ''}"
                    )
        with state.lock:
            state.calls.append(Call(request.method, path, response.status_code, kind, auth_kind))
        after = state.take_after_call(request.method, path)
        if after is not None:
            after.action()
        return Response(
            response_body,
            status_code=response.status_code,
            headers={
                **{k: v for k, v in response.headers.items() if k.lower() != "content-length"},
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": str(5000 - len(state.calls)),
                "x-ratelimit-reset": str(int(datetime.now(UTC).timestamp()) + 3600),
            },
            media_type=response.media_type,
        )

    @app.exception_handler(HTTPError)
    async def http_error(_: Request, error: HTTPError) -> JSONResponse:
        content: dict[str, Any] = {"message": error.message}
        if error.errors is not None:
            content["errors"] = error.errors
            content["documentation_url"] = "https://docs.github.com/rest"
        return JSONResponse(content, status_code=error.status, headers=error.headers)

    def check_body(body: Any, resource: str) -> str:
        text = str(body or "")
        if len(text) > MAX_BODY:
            with state.lock:
                state.violations.append(
                    f"{resource} body of {len(text)} characters (GitHub's limit: {MAX_BODY})"
                )
            raise HTTPError(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": resource,
                        "code": "unprocessable",
                        "field": "data",
                        "message": f"Body is too long (maximum is {MAX_BODY} characters)",
                    }
                ],
            )
        return text

    def body_of(request: Request) -> dict[str, Any]:
        data = json.loads(request.state.body or b"{}")
        assert isinstance(data, dict)
        return data

    # -- GitHub's web pages: the App manifest flow and installing the App -------------------------------------

    def form_of(request: Request) -> dict[str, str]:
        parsed = parse_qs((request.state.body or b"").decode())
        return {key: values[0] for key, values in parsed.items()}

    def web_page(title: str, body: str) -> HTMLResponse:
        return HTMLResponse(
            f"<!doctype html><html><head><title>{html.escape(title)} · GitHub</title></head>"
            f"<body style='font: 15px system-ui; margin: 2rem'><p><b>GitHub</b> (fake) · signed in as {WEB_USER}</p>"
            f"<h1>{html.escape(title)}</h1>{body}</body></html>"
        )

    def new_app_page(request: Request, owner: str) -> HTMLResponse:
        form = form_of(request)
        try:
            manifest = json.loads(form["manifest"])
        except (KeyError, ValueError):
            return HTMLResponse("Invalid GitHub App configuration", status_code=422)
        state_param = request.query_params.get("state", "")
        permissions = "".join(
            f"<li>{html.escape(name)}: {html.escape(str(access))}</li>"
            for name, access in manifest.get("default_permissions", {}).items()
        )
        return web_page(
            f"Create GitHub App for {owner}",
            f"<form method='post' action='/settings/apps/new/create'>"
            f"<label>GitHub App name <input name='name' value='{html.escape(manifest.get('name', ''))}'></label>"
            f"<p>Webhook URL: <code id='hook'>{html.escape(manifest['hook_attributes']['url'])}</code></p>"
            f"<ul>{permissions}</ul>"
            f"<input type='hidden' name='manifest' value='{html.escape(json.dumps(manifest))}'>"
            f"<input type='hidden' name='state' value='{html.escape(state_param)}'>"
            f"<input type='hidden' name='owner' value='{html.escape(owner)}'>"
            f"<button type='submit'>Create GitHub App for {html.escape(owner)}</button></form>",
        )

    @app.post("/settings/apps/new")
    async def new_app(request: Request) -> HTMLResponse:
        return new_app_page(request, WEB_USER)

    @app.post("/organizations/{org}/settings/apps/new")
    async def new_org_app(org: str, request: Request) -> HTMLResponse:
        return new_app_page(request, org)

    @app.post("/settings/apps/new/create")
    async def create_app_from_manifest(request: Request) -> RedirectResponse:
        form = form_of(request)
        manifest = json.loads(form["manifest"])
        name = form.get("name") or manifest["name"]
        private, public = key_pair()
        registered = RegisteredApp(
            state.next_id(),
            re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
            name,
            form["owner"],
            manifest,
            private,
            public,
            secrets.token_hex(20),
        )
        code = state.register_app(registered)
        query = urlencode({"code": code, "state": form.get("state", "")})
        return RedirectResponse(f"{manifest['redirect_url']}?{query}", status_code=302)

    @app.post("/app-manifests/{code}/conversions")
    async def convert_manifest(code: str, request: Request) -> JSONResponse:
        registered = state.convert_manifest(code)
        if registered is None:
            raise HTTPError(404, "Not Found")
        data = spec.example("integration-from-manifest")
        data["owner"].update(login=registered.owner, id=state.user(registered.owner).id)
        data.update(
            id=registered.id,
            slug=registered.slug,
            name=registered.name,
            html_url=f"{str(request.base_url).rstrip('/')}/apps/{registered.slug}",
            pem=registered.private_key_pem,
            webhook_secret=registered.webhook_secret,
            client_secret=secrets.token_hex(20),
            events=registered.manifest.get("default_events", []),
            permissions=registered.manifest.get("default_permissions", {}),
        )
        return JSONResponse(data, status_code=201)

    @app.get("/apps/{slug}/installations/new")
    async def install_page(slug: str) -> HTMLResponse:
        if state.registered is None or state.registered.slug != slug:
            return HTMLResponse("Not Found", status_code=404)
        return web_page(
            f"Install {state.registered.name}",
            "<form method='post'><p>Install on <b>acme</b>, all repositories.</p>"
            "<input type='hidden' name='account' value='acme'><button type='submit'>Install</button></form>",
        )

    @app.post("/apps/{slug}/installations/new")
    async def install(slug: str, request: Request) -> RedirectResponse:
        assert state.registered is not None and state.registered.slug == slug
        installation = state.install(form_of(request)["account"])
        setup_url = state.registered.manifest["setup_url"]
        query = urlencode({"installation_id": installation, "setup_action": "install"})
        return RedirectResponse(f"{setup_url}?{query}", status_code=302)

    # -- the App ------------------------------------------------------------------------------------------------

    @app.get("/app/installations")
    async def installations(request: Request) -> JSONResponse:
        authenticate(request, app_level=True)
        template = spec.example("base-installation-items")[0]
        found = []
        for installation, account in sorted(state.installations.items()):
            item = copy.deepcopy(template)
            item.update(
                id=installation, app_id=state.app_id, app_slug=state.app_slug, repository_selection="all"
            )
            item["account"].update(login=account, id=state.user(account).id)
            found.append(item)
        return JSONResponse(found)

    @app.get("/app")
    async def get_app(request: Request) -> JSONResponse:
        authenticate(request, app_level=True)
        data = spec.example("integration")
        data.update(id=state.app_id, slug=state.app_slug, name=state.app_slug)
        return JSONResponse(data)

    @app.post("/app/installations/{installation_id}/access_tokens")
    async def access_token(installation_id: int, request: Request) -> JSONResponse:
        authenticate(request, app_level=True)
        if not any(r.installation_id == installation_id for r in state.repos.values()):
            raise HTTPError(404, "Not Found")
        token = "ghs_" + secrets.token_hex(18)
        with state.lock:
            state.tokens[token] = installation_id
        data = spec.example("installation-token")
        data.update(
            token=token,
            expires_at=(datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        return JSONResponse(data, status_code=201)

    @app.get("/app/hook/deliveries")
    async def deliveries(request: Request) -> JSONResponse:
        authenticate(request, app_level=True)
        per_page = int(request.query_params.get("per_page", "30"))
        start = int(request.query_params.get("cursor") or 0)
        with state.lock:
            page = [
                {k: v for k, v in d.items() if not k.startswith("_")}
                for d in state.deliveries[start : start + per_page]
            ]
            more = start + per_page < len(state.deliveries)
        headers = {}
        if more:
            headers["link"] = (
                f'<{request.url.replace_query_params(per_page=per_page, cursor=start + per_page)}>; rel="next"'
            )
        return JSONResponse(page, headers=headers)

    @app.post("/app/hook/deliveries/{delivery_id}/attempts")
    async def redeliver(delivery_id: int, request: Request) -> JSONResponse:
        authenticate(request, app_level=True)
        with state.lock:
            found = next((d for d in state.deliveries if d["id"] == delivery_id), None)
            if found is None:
                raise HTTPError(404, "Not Found")
            state.redelivered.append(delivery_id)
        if state.redeliver is not None:
            threading.Thread(target=state.redeliver, args=(found,), daemon=True).start()
        return JSONResponse({}, status_code=202)

    # -- pull requests ------------------------------------------------------------------------------------------

    @app.get("/repos/{owner}/{name}/pulls/{number}")
    async def get_pull(owner: str, name: str, number: int, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        pull = pull_for(repo, number)
        data = spec.example("pull-request")
        data.update(number=number, node_id=pull.node_id, user=_user_json(pull.author), state="open")
        data["head"].update(sha=pull.head_sha, ref=pull.head_ref)
        data["base"].update(sha=pull.base_sha, ref=pull.base_ref)
        # The published example's labels and teams miss required fields: GitHub's real answers carry them.
        data["labels"] = []
        data["requested_teams"] = []
        return JSONResponse(data)

    @app.get("/repos/{owner}/{name}/pulls/{number}/files")
    async def list_files(owner: str, name: str, number: int, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        pull = pull_for(repo, number)
        per_page = int(request.query_params.get("per_page", "30"))
        page = int(request.query_params.get("page", "1"))
        template = spec.example("diff-entry-items")[0]
        entries = []
        for path, status in state.changed_files(repo, pull):
            patch, _ = diff_of(repo.commits[pull.base_sha].get(path), repo.commits[pull.head_sha].get(path))
            entry = dict(template)
            entry.update(
                filename=path,
                status=status,
                patch=patch,
                additions=sum(1 for line in patch.splitlines() if line.startswith("+")),
                deletions=sum(1 for line in patch.splitlines() if line.startswith("-")),
            )
            entry["changes"] = entry["additions"] + entry["deletions"]
            entry.pop("previous_filename", None)
            entries.append(entry)
        chunk = entries[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(entries):
            headers["link"] = (
                f'<{request.url.replace_query_params(per_page=per_page, page=page + 1)}>; rel="next"'
            )
        return JSONResponse(chunk, headers=headers)

    @app.post("/repos/{owner}/{name}/pulls/{number}/reviews")
    async def create_review(owner: str, name: str, number: int, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        pull = pull_for(repo, number)
        data = body_of(request)
        commit = data.get("commit_id") or pull.head_sha
        if commit not in repo.commits:
            raise HTTPError(422, "commit_id is not part of the pull request")
        comments = data.get("comments") or []
        if data.get("event") in ("COMMENT", "REQUEST_CHANGES") and not data.get("body") and not comments:
            raise HTTPError(422, "Unprocessable Entity: body is required")
        with state.lock:
            review_id = state.next_id()
            review = Review(
                review_id,
                f"PRR_{review_id}",
                number,
                state.bot,
                data.get("body") or "",
                str(data.get("event")),
                commit,
                [],
            )
            base = repo.commits[pull.base_sha]
            head = repo.commits[commit]
            for comment in comments:
                check_body(comment.get("body"), "PullRequestReviewComment")
                path = comment["path"]
                _, shown = diff_of(base.get(path), head.get(path))
                line = int(comment["line"])
                start = comment.get("start_line")
                if path not in head or line not in shown or (start is not None and start not in shown):
                    raise HTTPError(
                        422, "Unprocessable Entity: pull_request_review_thread.line must be part of the diff"
                    )
                if start is not None and start >= line:
                    raise HTTPError(422, "Unprocessable Entity: start_line must precede line")
                review.comments.append(
                    ReviewComment(
                        state.next_id(), review_id, path, line, start, comment["body"], state.bot, commit
                    )
                )
            repo.reviews.append(review)
        result = spec.example("pull-request-review")
        result.update(
            id=review_id,
            node_id=review.node_id,
            body=review.body,
            commit_id=commit,
            user=_user_json(state.bot),
            state="COMMENTED",
        )
        return JSONResponse(result)

    @app.post("/repos/{owner}/{name}/pulls/{number}/comments")
    async def create_review_comment(owner: str, name: str, number: int, request: Request) -> JSONResponse:
        """A comment outside a review: GitHub wraps it in a review of its own (COMMENTED)."""
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        pull = pull_for(repo, number)
        data = body_of(request)
        commit = data["commit_id"]
        if commit not in repo.commits:
            raise HTTPError(422, "commit_id is not part of the pull request")
        body = check_body(data.get("body"), "PullRequestReviewComment")
        path = data["path"]
        base, head = repo.commits[pull.base_sha], repo.commits[commit]
        if path not in dict(state.changed_files(repo, pull)):
            raise HTTPError(422, "Unprocessable Entity: path must be part of the diff")
        line: int | None = None
        if data.get("subject_type") != "file":
            _, shown = diff_of(base.get(path), head.get(path))
            line = int(data.get("line") or 0)
            if line not in shown:
                raise HTTPError(
                    422, "Unprocessable Entity: pull_request_review_thread.line must be part of the diff"
                )
        with state.lock:
            review_id, comment_id = state.next_id(), state.next_id()
            comment = ReviewComment(comment_id, review_id, path, line, None, body, state.bot, commit)
            repo.reviews.append(
                Review(review_id, f"PRR_{review_id}", number, state.bot, "", "COMMENT", commit, [comment])
            )
        result = spec.example("pull-request-review-comment-example-for-a-multi-line-comment")
        result.update(
            id=comment_id,
            node_id=f"PRRC_{comment_id}",
            pull_request_review_id=review_id,
            path=path,
            body=body,
            commit_id=commit,
            original_commit_id=commit,
            user=_user_json(state.bot),
            start_line=None,
            original_start_line=None,
            subject_type="file" if line is None else "line",
        )
        if line is None:
            # The description has no null for them: a file-level comment's answer leaves them out.
            for key in ("line", "original_line", "position", "original_position"):
                result.pop(key, None)
        else:
            result.update(line=line, original_line=line)
        return JSONResponse(result, status_code=201)

    # -- git ----------------------------------------------------------------------------------------------------

    @app.get("/repos/{owner}/{name}/git/blobs/{sha}")
    async def get_blob(owner: str, name: str, sha: str, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        text = state.blobs.get(sha)
        if text is None or not any(text in files.values() for files in repo.commits.values()):
            raise HTTPError(404, "Not Found")
        data = text.encode()
        # GitHub wraps the base64 content at 60 characters a line.
        encoded = base64.encodebytes(data).decode().replace("\n", "")
        content = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
        blob = spec.example("blob")
        blob.update(
            content=content,
            encoding="base64",
            sha=sha,
            size=len(data),
            url=f"{HOST}/repos/{owner}/{name}/git/blobs/{sha}",
            node_id=f"B_{sha[:12]}",
        )
        return JSONResponse(blob)

    # -- commits ------------------------------------------------------------------------------------------------

    def commit_json(repo: Repository, sha: str, template: dict[str, Any]) -> dict[str, Any]:
        data = copy.deepcopy(template)
        api = f"{HOST}/repos/{repo.owner}/{repo.name}"
        data.update(
            sha=sha,
            node_id=f"C_{sha[:12]}",
            url=f"{api}/commits/{sha}",
            html_url=f"https://github.com/{repo.owner}/{repo.name}/commit/{sha}",
            comments_url=f"{api}/commits/{sha}/comments",
            parents=[
                {
                    "sha": p,
                    "url": f"{api}/commits/{p}",
                    "html_url": f"https://github.com/{repo.owner}/{repo.name}/commit/{p}",
                }
                for p in repo.parents.get(sha, ())
            ],
        )
        data["commit"].update(message=repo.messages.get(sha, ""), url=f"{api}/git/commits/{sha}")
        return data

    @app.get("/repos/{owner}/{name}/compare/{basehead}")
    async def compare(owner: str, name: str, basehead: str, request: Request) -> JSONResponse:
        """`BASE...HEAD`: the commits reachable from head and not from base, and the files changed from their
        merge base to head. GitHub's caps: 250 commits without paging (the newest), 300 files (on the first
        page only when paging)."""
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        base, dots, head = basehead.partition("...")
        if not dots or base not in repo.commits or head not in repo.commits:
            raise HTTPError(404, "Not Found")
        merge_base = state.merge_base(repo, base, head)
        if merge_base is None:
            raise HTTPError(404, f"No common ancestor between {base} and {head}.")
        data = spec.example("commit-comparison")
        template = data["commits"][0]
        ahead = state.commits_between(repo, base, head)
        behind = state.commits_between(repo, head, base)
        paged = "page" in request.query_params or "per_page" in request.query_params
        per_page = int(request.query_params.get("per_page", "30"))
        page = int(request.query_params.get("page", "1"))
        shown = ahead[(page - 1) * per_page : page * per_page] if paged else ahead[-250:]
        before, after = repo.commits[merge_base], repo.commits[head]
        files = []
        for path in sorted({*before, *after}):
            if before.get(path) == after.get(path):
                continue
            status = "added" if path not in before else "removed" if path not in after else "modified"
            patch, _ = diff_of(before.get(path), after.get(path))
            entry = copy.deepcopy(data["files"][0])
            entry.update(
                filename=path,
                status=status,
                sha=blob_oid(after.get(path) or before.get(path) or ""),
                patch=patch,
                additions=sum(1 for line in patch.splitlines() if line.startswith("+")),
                deletions=sum(1 for line in patch.splitlines() if line.startswith("-")),
            )
            entry["changes"] = entry["additions"] + entry["deletions"]
            files.append(entry)
        data.update(
            status="identical"
            if not ahead and not behind
            else "diverged"
            if ahead and behind
            else "ahead"
            if ahead
            else "behind",
            ahead_by=len(ahead),
            behind_by=len(behind),
            total_commits=len(ahead),
            base_commit=commit_json(repo, base, template),
            merge_base_commit=commit_json(repo, merge_base, template),
            commits=[commit_json(repo, sha, template) for sha in shown],
            files=files[:300] if not paged or page == 1 else [],
        )
        headers = {}
        if paged and page * per_page < len(ahead):
            headers["link"] = (
                f'<{request.url.replace_query_params(per_page=per_page, page=page + 1)}>; rel="next"'
            )
        return JSONResponse(data, headers=headers)

    @app.get("/repos/{owner}/{name}/commits/{sha}/pulls")
    async def commit_pulls(owner: str, name: str, sha: str, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        if sha not in repo.commits:
            raise HTTPError(422, f"No commit found for SHA: {sha}")
        template = spec.example("pull-request-simple-items")[0]
        found = []
        for pull in state.pulls_with_commit(repo, sha):
            item = copy.deepcopy(template)
            item.update(number=pull.number, node_id=pull.node_id, user=_user_json(pull.author), state="open")
            item["head"].update(sha=pull.head_sha, ref=pull.head_ref)
            item["base"].update(sha=pull.base_sha, ref=pull.base_ref)
            # As for a pull request: the published example's labels and teams miss required fields.
            item["labels"] = []
            item["requested_teams"] = []
            found.append(item)
        per_page = int(request.query_params.get("per_page", "30"))
        page = int(request.query_params.get("page", "1"))
        return JSONResponse(found[(page - 1) * per_page : page * per_page])

    # -- checks -------------------------------------------------------------------------------------------------

    def check_run_json(run: CheckRun) -> dict[str, Any]:
        data: dict[str, Any] = spec.example("check-run-example-of-completed-conclusion")
        data.update(
            id=run.id,
            node_id=run.node_id,
            head_sha=run.head_sha,
            name=run.name,
            status=run.status,
            conclusion=run.conclusion,
            external_id=run.external_id,
            pull_requests=[],
        )
        data["output"] = {
            "title": run.output.get("title"),
            "summary": run.output.get("summary"),
            "text": run.output.get("text"),
            "annotations_count": len(run.annotations),
            "annotations_url": f"{HOST}/repos/check-runs/{run.id}/annotations",
        }
        data["check_suite"] = {"id": run.suite_id}
        data["app"]["id"] = state.app_id
        data["app"]["slug"] = state.app_slug
        return data

    def apply_output(run: CheckRun, output: dict[str, Any] | None) -> None:
        if not output:
            return
        annotations = output.get("annotations") or []
        if len(annotations) > 50:
            raise HTTPError(422, "Only 50 annotations are allowed per request")
        run.output = {k: v for k, v in output.items() if k != "annotations"}
        run.annotations.extend(annotations)

    @app.post("/repos/{owner}/{name}/check-runs")
    async def create_check_run(owner: str, name: str, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        data = body_of(request)
        if data["head_sha"] not in repo.commits:
            raise HTTPError(422, "No commit found for SHA")
        with state.lock:
            run_id = state.next_id()
            suite = next(
                (c.suite_id for c in repo.check_runs if c.head_sha == data["head_sha"]), state.next_id()
            )
            run = CheckRun(
                run_id,
                f"CR_{run_id}",
                data["head_sha"],
                data["name"],
                data.get("status") or "queued",
                data.get("conclusion"),
                data.get("external_id"),
                {},
                [],
                list(data.get("actions") or []),
                state.app_id,
                suite,
            )
            apply_output(run, data.get("output"))
            repo.check_runs.append(run)
        return JSONResponse(check_run_json(run), status_code=201)

    @app.patch("/repos/{owner}/{name}/check-runs/{run_id}")
    async def update_check_run(owner: str, name: str, run_id: int, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        data = body_of(request)
        with state.lock:
            run = next((c for c in repo.check_runs if c.id == run_id), None)
            if run is None:
                raise HTTPError(404, "Not Found")
            for key in ("name", "status", "conclusion", "external_id"):
                if key in data:
                    setattr(run, key, data[key])
            if "conclusion" in data:
                run.status = "completed"
            if "actions" in data:
                run.actions = list(data["actions"] or [])
            apply_output(run, data.get("output"))
        return JSONResponse(check_run_json(run))

    # -- conversation -------------------------------------------------------------------------------------------

    def comment_json(comment: IssueComment, repo: Repository) -> dict[str, Any]:
        data: dict[str, Any] = spec.example("issue-comment")
        data.update(
            id=comment.id,
            node_id=comment.node_id,
            body=comment.body,
            user=_user_json(comment.user),
            created_at=comment.created_at,
            updated_at=comment.updated_at,
        )
        return data

    @app.post("/repos/{owner}/{name}/issues/{number}/comments")
    async def create_comment(owner: str, name: str, number: int, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        pull_for(repo, number)
        with state.lock:
            comment_id = state.next_id()
            body = check_body(body_of(request)["body"], "IssueComment")
            comment = IssueComment(comment_id, f"IC_{comment_id}", number, state.bot, body, now(), now())
            repo.issue_comments.append(comment)
        return JSONResponse(comment_json(comment, repo), status_code=201)

    @app.patch("/repos/{owner}/{name}/issues/comments/{comment_id}")
    async def update_comment(owner: str, name: str, comment_id: int, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        with state.lock:
            comment = next((c for c in repo.issue_comments if c.id == comment_id), None)
            if comment is None:
                raise HTTPError(404, "Not Found")
            if comment.user.login != state.bot.login:
                raise HTTPError(403, "Resource not accessible by integration")
            comment.body = check_body(body_of(request)["body"], "IssueComment")
            comment.updated_at = now()
            comment.edited = True
        return JSONResponse(comment_json(comment, repo))

    @app.post("/repos/{owner}/{name}/issues/comments/{comment_id}/reactions")
    async def react(owner: str, name: str, comment_id: int, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        content = body_of(request)["content"]
        with state.lock:
            comment = next((c for c in repo.issue_comments if c.id == comment_id), None)
            if comment is None:
                raise HTTPError(404, "Not Found")
            existing = (state.bot.login, content) in comment.reactions
            if not existing:
                comment.reactions.append((state.bot.login, content))
        data = spec.example("reaction")
        data.update(content=content, user=_user_json(state.bot))
        return JSONResponse(data, status_code=200 if existing else 201)

    @app.get("/repos/{owner}/{name}/collaborators/{username}/permission")
    async def permission(owner: str, name: str, username: str, request: Request) -> JSONResponse:
        repo = repo_for(owner, name, authenticate(request, app_level=False))
        level = repo.permissions.get(username, "none")
        data = spec.example("repository-collaborator-permission-response-if-user-has-admin-permissions")
        legacy = {"maintain": "write", "triage": "read"}.get(level, level)
        data.update(permission=legacy, role_name=level)
        data["user"] = {**data["user"], "login": username, "role_name": level}
        data["user"]["permissions"] = {
            "admin": level == "admin",
            "maintain": level in ("admin", "maintain"),
            "push": level in ("admin", "maintain", "write"),
            "triage": level in ("admin", "maintain", "write", "triage"),
            "pull": level != "none",
        }
        return JSONResponse(data)

    @app.get("/orgs/{org}/teams/{team_slug}/memberships/{username}")
    async def team_membership(org: str, team_slug: str, username: str, request: Request) -> JSONResponse:
        authenticate(request, app_level=False)
        if username not in state.teams.get((org, team_slug), set()):
            raise HTTPError(404, "Not Found")
        data = spec.example("team-membership-response-if-user-is-a-team-maintainer")
        data.update(state="active", role="member")
        return JSONResponse(data)

    # -- GraphQL ------------------------------------------------------------------------------------------------

    @app.post("/graphql")
    async def graphql_endpoint(request: Request) -> Response:
        installation = authenticate(request, app_level=False)
        data = body_of(request)
        try:
            document = graphql.parse(data["query"])
        except graphql.GraphQLError as error:
            state.violations.append(f"GraphQL syntax: {error}")
            return JSONResponse({"errors": [{"message": str(error)}]})
        errors = graphql.validate(spec.graphql_schema(), document)
        if errors:
            with state.lock:
                state.violations.extend(f"GraphQL query breaks GitHub's schema: {e.message}" for e in errors)
            return JSONResponse({"errors": [{"message": e.message} for e in errors]})
        from tests.fakegithub.graphql_api import NODE_LIMIT, GitHubQueryError, requested_nodes, root_value

        nodes = requested_nodes(document, data.get("variables"))
        if nodes > NODE_LIMIT:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "type": "MAX_NODE_LIMIT_EXCEEDED",
                            "message": f"This query requests up to {nodes:,} possible nodes which exceeds the "
                            f"maximum limit of {NODE_LIMIT:,}.",
                        }
                    ]
                }
            )
        result = graphql.execute_sync(
            spec.graphql_schema(),
            document,
            root_value=root_value(state, installation),
            variable_values=data.get("variables"),
        )
        if result.errors:

            def kind(error: graphql.GraphQLError) -> str:
                original = error.original_error
                return original.type if isinstance(original, GitHubQueryError) else "NOT_FOUND"

            return JSONResponse(
                {
                    "data": result.data,
                    "errors": [
                        {"message": e.message, "path": e.path, "type": kind(e)} for e in result.errors
                    ],
                }
            )
        answer = json.dumps({"data": result.data})
        if len(answer) > state.graphql_response_limit:
            # What GitHub answers when a query runs past its 10-second limit.
            return JSONResponse(
                {
                    "data": None,
                    "errors": [
                        {
                            "message": "Something went wrong while executing your query. This may be the result "
                            "of a timeout, or it could be a GitHub bug. Please include `F4KE:0001:2B3C:4D5E:6F70` "
                            "when reporting this issue."
                        }
                    ],
                },
                status_code=502,
            )
        return Response(answer, media_type="application/json")

    return app


_EXPRESSION = re.compile(r"^(?P<rev>[0-9a-f]{7,40}):(?P<path>.*)$")
