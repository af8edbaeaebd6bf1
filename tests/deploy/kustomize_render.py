"""Render the kustomizations in deploy/k8s offline, for the tests (kustomize is not installed).

It implements the part of kustomize those files use, and refuses everything
else, so a kustomization.yaml that grows a feature this renderer does not know
fails the tests instead of being rendered wrongly:

* ``resources``: YAML files (several documents each) and directories holding a
  kustomization.yaml, rendered recursively; an object defined twice is an error;
* ``images``: ``name`` → ``newName`` / ``newTag`` on every container image;
* ``patches``: ``path`` to a strategic-merge patch, matched by kind, name and
  namespace. Maps merge; ``null`` deletes a key; the lists Kubernetes merges by
  key (containers, initContainers, env, volumes by ``name``; volumeMounts by
  ``mountPath``) merge element by element, and an element with
  ``$patch: delete`` removes its match; other lists are replaced, as kustomize
  replaces ``args`` and ``command``. Lists that Kubernetes merges by another
  strategy (``ports``, ``imagePullSecrets``, ...) are refused.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "images", "patches"}
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
# Merged by Kubernetes with a key this renderer does not implement: refuse, never guess.
UNSUPPORTED_LISTS = {"ports", "imagePullSecrets", "hostAliases", "topologySpreadConstraints"}


class UnsupportedKustomization(ValueError):
    """The kustomization uses something this renderer does not implement."""


def _load_documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
            raise UnsupportedKustomization(f"{path}: not a Kubernetes object: {doc!r:.80}")
    return docs


def object_id(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build directory`` would print (in resource order)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text("utf-8"))
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedKustomization(f"{directory}: unsupported keys {sorted(unknown)}")
    if kustomization.get("kind") != "Kustomization":
        raise UnsupportedKustomization(f"{directory}: kind is not Kustomization")
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        objects.extend(render(path) if path.is_dir() else _load_documents(path))
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        if object_id(obj) in seen:
            raise UnsupportedKustomization(f"{directory}: {object_id(obj)} defined twice")
        seen.add(object_id(obj))
    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise UnsupportedKustomization(f"{directory}: patch {patch_entry}: only `path`")
        for patch in _load_documents(directory / patch_entry["path"]):
            targets = [o for o in objects if object_id(o) == object_id(patch)]
            if len(targets) != 1:
                raise UnsupportedKustomization(
                    f"{directory}: patch {patch_entry['path']} matches {len(targets)} objects"
                )
            index = objects.index(targets[0])
            objects[index] = strategic_merge(targets[0], patch)
    for image in kustomization.get("images", []):
        if set(image) - {"name", "newName", "newTag"}:
            raise UnsupportedKustomization(f"{directory}: image {image}: name/newName/newTag")
        for obj in objects:
            _set_images(obj, image)
    return objects


def strategic_merge(base: Any, patch: Any, key: str = "") -> Any:
    """``patch`` merged into a copy of ``base`` (see the module docstring)."""
    if isinstance(patch, dict):
        if "$patch" in patch:
            raise UnsupportedKustomization(f"$patch outside a keyed list element at {key!r}")
        merged = copy.deepcopy(base) if isinstance(base, dict) else {}
        for name, value in patch.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = strategic_merge(merged.get(name), value, name)
        return merged
    if isinstance(patch, list):
        if key in UNSUPPORTED_LISTS:
            raise UnsupportedKustomization(f"patching the list {key!r} is not supported")
        if key not in MERGE_KEYS:
            return copy.deepcopy(patch)
        return _merge_keyed_list(base or [], patch, MERGE_KEYS[key], key)
    return patch


def _merge_keyed_list(base: list[Any], patch: list[Any], merge_key: str, key: str) -> list[Any]:
    merged = copy.deepcopy(base)
    for element in patch:
        if merge_key not in element:
            raise UnsupportedKustomization(f"an element of {key!r} lacks its key {merge_key!r}")
        matches = [i for i, e in enumerate(merged) if e.get(merge_key) == element[merge_key]]
        directive = element.get("$patch")
        if directive == "delete":
            if not matches:
                raise UnsupportedKustomization(f"{key}: nothing to delete at {element!r}")
            del merged[matches[0]]
        elif directive is not None:
            raise UnsupportedKustomization(f"{key}: $patch: {directive} is not supported")
        elif matches:
            merged[matches[0]] = strategic_merge(merged[matches[0]], element)
        else:
            merged.append(copy.deepcopy(element))
    return merged


def containers(obj: Any) -> list[dict[str, Any]]:
    """Every container and init container anywhere in ``obj`` (pod templates at any depth)."""
    found: list[dict[str, Any]] = []
    if isinstance(obj, dict):
        for name, value in obj.items():
            if name in ("containers", "initContainers") and isinstance(value, list):
                found.extend(value)
            else:
                found.extend(containers(value))
    elif isinstance(obj, list):
        for value in obj:
            found.extend(containers(value))
    return found


def split_image(image: str) -> tuple[str, str | None]:
    """(name, tag) of an image reference without a digest; a registry port is no tag."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, None
    return name, tag


def _set_images(obj: dict[str, Any], rule: dict[str, str]) -> None:
    for container in containers(obj):
        name, tag = split_image(container["image"])
        if name == rule["name"]:
            new_tag = rule.get("newTag", tag)
            new_name = rule.get("newName", name)
            container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name
