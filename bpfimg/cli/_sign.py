"""``bpfimg generate-key-pair``, ``bpfimg sign`` and ``bpfimg verify``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bpfimg.cli._app import OutputFormat, app, key_values, with_options
from bpfimg.cli._registry import REGISTRY_PARAMETERS, registry_session

Claims = Annotated[
    list[str] | None,
    typer.Option("-a", "--annotation", help="Payload claim KEY=VALUE (repeatable)."),
]


@app.command("generate-key-pair")
def generate_key_pair(
    output_key_prefix: Annotated[
        str, typer.Option("--output-key-prefix", help="Write PREFIX.key and PREFIX.pub.")
    ] = "cosign",
) -> None:
    """Write a cosign-format key pair: PREFIX.key (encrypted, 0600) and PREFIX.pub.

    The password comes from COSIGN_PASSWORD (may be empty), else a prompt, else stdin.
    """
    from bpfimg.sign.keys import generate_key_pair as generate
    from bpfimg.sign.keys import password_from_env_or_prompt

    password = password_from_env_or_prompt(confirm=True, where=f"{output_key_prefix}.key")
    pair = generate(output_key_prefix, password)
    print(f"private key written to {pair.private_key}")
    print(f"public key written to {pair.public_key}")


@app.command()
@with_options(REGISTRY_PARAMETERS)
def sign(
    image: Annotated[str, typer.Argument(help="Registry reference or oci:DIR[:TAG].")],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", help="Private key (cosign format or PEM); keyless without.", show_default=False
        ),
    ] = None,
    bundle: Annotated[
        bool, typer.Option("--bundle", help="Also attach a Sigstore bundle as an OCI referrer.")
    ] = False,
    annotation: Claims = None,
    identity_token: Annotated[
        str | None,
        typer.Option(
            "--identity-token", help="OIDC token for keyless signing.", show_default=False
        ),
    ] = None,
    certificate: Annotated[
        Path | None,
        typer.Option(
            "--certificate",
            help="Certificate for --key, attached to the signature.",
            show_default=False,
        ),
    ] = None,
    certificate_chain: Annotated[
        Path | None,
        typer.Option(
            "--certificate-chain", help="Its chain (PEM), attached too.", show_default=False
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("-o", "--output")] = OutputFormat.table,
    **values: Any,
) -> None:
    """Sign the digest an image resolves to (for multi-arch: the index), cosign's way."""
    from bpfimg.errors import UsageError
    from bpfimg.sign.signing import SigningKey, sign_image
    from bpfimg.sign.store import open_store

    if key is None and (certificate or certificate_chain):
        raise UsageError("--certificate and --certificate-chain go with --key")
    with registry_session(values) as options:
        store = open_store(image, options)
        signing_key = (
            SigningKey.load(key, None, certificate, certificate_chain) if key is not None else None
        )
        result = sign_image(
            store, signing_key, key_values(annotation, "-a"), bundle, identity_token
        )
    if output is OutputFormat.json:
        print(result.model_dump_json(indent=2))
        return
    print(f"signed {result.image}@{result.digest}")
    print(f"  signature  {result.signature_tag} ({result.signature_manifest})")
    if result.bundle_referrer:
        print(f"  bundle     referrer {result.bundle_referrer}")
    if result.keyless_identity:
        print(f"  identity   {result.keyless_identity}")


@app.command()
@with_options(REGISTRY_PARAMETERS)
def verify(
    image: Annotated[str, typer.Argument(help="Registry reference or oci:DIR[:TAG].")],
    key: Annotated[
        Path | None, typer.Option("--key", help="Public key (PEM).", show_default=False)
    ] = None,
    certificate_identity: Annotated[
        str | None, typer.Option("--certificate-identity", show_default=False)
    ] = None,
    certificate_identity_regexp: Annotated[
        str | None, typer.Option("--certificate-identity-regexp", show_default=False)
    ] = None,
    certificate_oidc_issuer: Annotated[
        str | None, typer.Option("--certificate-oidc-issuer", show_default=False)
    ] = None,
    certificate_oidc_issuer_regexp: Annotated[
        str | None, typer.Option("--certificate-oidc-issuer-regexp", show_default=False)
    ] = None,
    ca_roots: Annotated[
        Path | None,
        typer.Option(
            "--ca-roots",
            help="Trust these root certificates instead of Fulcio's.",
            show_default=False,
        ),
    ] = None,
    insecure_ignore_tlog: Annotated[
        bool,
        typer.Option(
            "--insecure-ignore-tlog", help="Accept signatures that were never logged in Rekor."
        ),
    ] = False,
    annotation: Claims = None,
    output: Annotated[OutputFormat, typer.Option("-o", "--output")] = OutputFormat.table,
    **values: Any,
) -> None:
    """Verify an image's signatures (referrer bundles, then the .sig tag); exit 1 if none do."""
    from bpfimg.sign.keys import load_public_key
    from bpfimg.sign.store import open_store
    from bpfimg.sign.verify import Policy, load_ca_roots, verify_image

    policy = Policy(
        public_key=load_public_key(key) if key is not None else None,
        identity=certificate_identity,
        identity_regexp=certificate_identity_regexp,
        issuer=certificate_oidc_issuer,
        issuer_regexp=certificate_oidc_issuer_regexp,
        claims=key_values(annotation, "-a"),
        ca_roots=load_ca_roots(ca_roots) if ca_roots is not None else None,
        ignore_tlog=insecure_ignore_tlog,
    )
    with registry_session(values) as options:
        result = verify_image(open_store(image, options), policy)
    if output is OutputFormat.json:
        print(result.model_dump_json(indent=2))
    else:
        for signature in result.signatures:
            if signature.verified:
                who = f" ({signature.identity}, {signature.issuer})" if signature.identity else ""
                print(f"verified  {signature.scheme:<7} {signature.where}{who}")
            else:
                print(f"rejected  {signature.scheme:<7} {signature.where}: {signature.reason}")
    if not result.verified:
        reasons = "; ".join(s.reason for s in result.signatures if not s.verified)
        print(
            f"error: {result.image}@{result.digest}: no signature verified: {reasons}",
            file=sys.stderr,
        )
        raise typer.Exit(1)
