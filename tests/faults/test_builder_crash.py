"""A builder killed at each stage of a build, on both stacks.

=========================  ==========================================  =========================
stage                      how it dies                                 image
=========================  ==========================================  =========================
during Nix                 from outside: once the Nix call log shows   ``sleeper/hello``
                           the realisation started, the test SIGKILLs  (``sleeper`` builds for
                           the builder's process group by PID          seconds)
after some layers          the builder's test hook, right after the    ``foo``
                           first new layer blob is stored
before the manifest        the hook, after every blob and the config   ``foobar``
record                     are stored, before the image record
=========================  ==========================================  =========================

Each test pulls while the builder dies, and asserts:

- at the crash, and after, every manifest recorded anywhere names only
  blobs that are stored (the image record is written last);
- the waiting pull completes, with the image the next pull gets too;
- there were exactly two builds of the image: the dead one (its record
  still active: it never reported) and one take-over, claimed only once the
  dead one's lease had expired, whose build wrote the image record;
- two builders ran and Nix realised twice: no duplicate builds.
"""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from metastore.records import BuildState
from tests.support.crash import Target, manifest_digests, wait_for

pytestmark = [pytest.mark.nix, pytest.mark.integration]

IMAGES = {"nix": "sleeper/hello", "layer": "foo", "record": "foobar"}


@pytest.mark.parametrize("stage", list(IMAGES))
def test_a_builder_killed_leaves_no_broken_manifest_and_is_taken_over(
    target: Target, stage: str
) -> None:
    image = IMAGES[stage]
    runs, realised = target.runs(), target.realisations()
    stored_before = target.stored_blobs()
    if stage != "nix":
        target.arm(stage)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pull = pool.submit(target.pull, image)
            if stage == "nix":
                wait_for(lambda: target.realisations() > realised, "the builder to run Nix")
                assert target.kill_builders() == 1
            else:
                wait_for(target.fired, f"the builder to reach {stage!r}")
            assert target.missing_blobs() == []  # right at the crash
            stored_at_crash = target.stored_blobs()
            answer = pull.result()
    finally:
        target.disarm()
    assert answer.status_code == 200, answer.text
    again = target.pull(image)
    assert again.status_code == 200
    assert again.content == answer.content

    dead, taken = target.builds_of(f"{image}:latest")
    assert dead.state.active, dead  # it never reported: no failure, no success
    assert dead.lease_expires_at <= taken.created_at  # taken over once the lease expired
    assert taken.state is BuildState.SUCCEEDED
    recorded = target.metadata.get_image(taken.cache_key)
    assert recorded is not None
    assert recorded.build_id == taken.build_id
    assert target.runs() - runs == 2
    assert target.realisations() - realised == 2

    assert target.missing_blobs() == []
    # The crash points are where they claim to be. Blobs the crashed build
    # stored: none during Nix; some layers but not the last (the image's own
    # customisation layer) nor the config after the first layer; everything
    # before the record.
    config, *layers = manifest_digests(answer.content)
    new_at_crash = (stored_at_crash - stored_before) & {config, *layers}
    if stage == "nix":
        assert new_at_crash == set()
    elif stage == "layer":
        assert new_at_crash and new_at_crash <= set(layers[:-1])
    else:
        assert {config, *layers} <= stored_at_crash
    for digest in manifest_digests(answer.content):
        head = requests.head(f"{target.url}/v2/{image}/blobs/{digest}", timeout=60)
        assert head.status_code == 200, (digest, head.text)
    print(f"\n{target.name}, killed {stage}: {dead.build_id} taken over by {taken.build_id}")
