"""Popularity of store paths across a channel, computed as Nixery's popcount does.

The layering (:mod:`layering`) groups store paths better when it knows how
widely each path is used across all of nixpkgs: a C library referenced by
tens of thousands of packages belongs in a layer of its own that every image
shares. Nixery's ``popcount`` measures that without building or evaluating
anything, from what a binary cache already publishes:

1. The channel (:mod:`popcount.channel`): ``<channel base>/<channel>``
   redirects to the channel's current release; that release names its nixpkgs
   commit (``git-revision``) and lists every store path the channel built
   (``store-paths.xz``). Following the redirect once pins the release, so
   both files come from the same one even if the channel advances meanwhile.
2. The narinfos (:mod:`popcount.fetch`): for every listed path
   ``/nix/store/<hash>-<name>``, ``<cache>/<hash>.narinfo`` names the path's
   runtime ``References:``. Tens of thousands of small downloads, so they run
   in parallel (``--jobs``, Nixery uses 42) over kept-alive connections, and
   each is stored in an on-disk cache as it arrives: an interrupted run
   resumes where it stopped, and a run for the next release of the channel
   only fetches what changed (a narinfo never changes for its hash).
3. The count (:mod:`popcount.count`): every reference of every listed path
   counts one for the referenced path's ``name-version`` (the store path
   without its hash; a path's reference to itself counts too); entries
   counted only once are dropped. The result, ``{"name-version": count}``, is
   the popularity format of Nixery that ``NIX_POPULARITY_URL`` serves to the
   builder.

Like Nixery's, the count is an approximation: paths missing from the cache
(unfree, failed) are skipped, and paths of the same ``name-version`` are
added together.
"""
