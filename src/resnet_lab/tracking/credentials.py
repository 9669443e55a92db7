"""Credentials for a tracking server, and keeping passwords out of everything a run records."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import unquote, urlsplit

from resnet_lab.errors import ConfigError, UserError


def check_credentials(uri: str) -> None:
    """A server with authentication (``mlflow server --app-name basic-auth``) refuses a job without valid
    credentials: say so in one line before any run exists, rather than in a traceback from inside MLflow."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except MlflowException as exc:
        status = exc.get_http_status_code()
        if status in (401, 403):
            raise AccessRefused(redact_uri(uri), os.environ.get("MLFLOW_TRACKING_USERNAME")) from None
        if status == 404:  # something listens there, but not MLflow's REST API
            raise ConfigError("tracking.uri", redact_uri(uri), "the URL of an MLflow tracking server (it answered "
                              "HTTP 404 to MLflow's API)") from None
        raise


class AccessRefused(UserError):
    """The tracking server wants credentials it did not get, or refused those it got."""

    def __init__(self, uri: str, user: Optional[str]) -> None:
        if user:
            why = f"refused the credentials of user {user!r}: check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        else:
            why = "asks for credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        super().__init__(f"the MLflow tracking server {uri} {why}")


# `//user:password@` in a URI, also as Hydra escapes it in a sweep job's overrides (`\\:`).
_PASSWORD_IN_URI = re.compile(r"(//[^/@\s]*?:)[^/@\s]*@")


def redact_uri(uri: str) -> str:
    """Drop the password from ``scheme://user:password@host``: credentials never reach a param or tag."""
    return _PASSWORD_IN_URI.sub(r"\1***@", uri)


def credentials_from_uri_args(args: Sequence[str], environ: Dict[str, str]) -> List[str]:
    """``tracking.uri=http://user:password@host`` on a command line: hand the credentials to MLflow's client as
    ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD`` (in ``environ``, inherited by every job: joblib's workers, Slurm's
    jobs) and keep the URI without them, so the password never reaches Hydra's files, submitit's job
    pickles or a log line that repeats the overrides."""
    kept = []
    for arg in args:
        key, sep, value = arg.partition("=")
        parts = urlsplit(value) if sep and key.lstrip("+~").endswith("tracking.uri") else None
        if parts is not None and parts.scheme in ("http", "https") and parts.username is not None:
            environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username)
            if parts.password is not None:
                environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
            host = parts.netloc.rpartition("@")[2]
            arg = f"{key}={parts._replace(netloc=host).geturl()}"
        kept.append(arg)
    return kept


def redact_overrides(overrides: Sequence[str]) -> list:
    """Overrides as recorded with a run: URIs without passwords, ``hydra.job.env_set`` values hidden."""
    public = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if "env_set" in key:
            value = "***"
        else:
            value = redact_uri(value)
        public.append(f"{key}{sep}{value}")
    return public


def redact_files(paths: Sequence[Path]) -> None:
    """Rewrite files (Hydra's ``.hydra/*.yaml``, ``multirun.yaml``) with every URI password replaced by ``***``.

    Hydra saves the config and the overrides before a job starts, as given: a ``tracking.uri`` with a
    password would otherwise stay in every job's folder. Parallel jobs may rewrite the same file: each
    writes a complete copy and renames it into place.
    """
    for path in paths:
        try:
            text = path.read_text()
        except (FileNotFoundError, IsADirectoryError):
            continue
        public = redact_uri(text)
        if public != text:
            spare = path.with_name(f".{path.name}.{os.getpid()}")
            spare.write_text(public)
            os.replace(spare, path)


def public_config(cfg: Any) -> Any:
    """The resolved config as it may be recorded (params, config.yaml): every URI without its password.

    Secrets reach a config only through values such as ``tracking.uri=http://user:pw@host`` or an
    ``${oc.env:...}`` interpolation into one; environment variables are never read or recorded here.
    """
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else cfg
    if isinstance(tree, Mapping):
        return {key: public_config(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [public_config(value) for value in tree]
    if isinstance(tree, str):
        return redact_uri(tree)
    return tree
