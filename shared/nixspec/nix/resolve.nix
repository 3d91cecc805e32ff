# Resolve image package names to derivations, without ever failing the batch.
#
# Everything arrives as ONE JSON string (`--argstr request '{...}'`), decoded
# with builtins.fromJSON: names are data, never Nix code. The request:
#   { "source": { "kind": "path"|"channel"|"git", "location": ..., "revision": ... },
#     "system": "x86_64-linux", "allowUnfree": false,
#     "names": [ "hello", "python3packages.requests", ... ],
#     "explain": null | "<one name>", "probe": false }
#
# The answer (with `nix-instantiate --eval --strict --json`) is one entry per
# name, in order:
#   { name, attrPath, drvPath, outputs = { out = "/nix/store/..."; ... } }
#   { name, error = "not-found" | "ambiguous" | "not-a-package" | "eval-error",
#     attrPath, candidates }
#
# `builtins.tryEval` catches `throw` and `assert` (unfree, broken, insecure
# packages in nixpkgs throw). It cannot catch `abort` or a missing attribute
# inside a package: those kill the whole evaluation, and the caller isolates
# the guilty names by evaluating smaller batches. With "explain" set, the one
# name is forced WITHOUT tryEval, so Nix prints the real error message; with
# "probe" set, only the package set is loaded (is the source itself broken?).
{ request }:
let
  req = builtins.fromJSON request;
  src = req.source;
  isCommit = s: builtins.match "[0-9a-f]{40}" s != null;

  pkgsRoot =
    if src.kind == "path" then /. + src.location
    else if src.kind == "channel" then
      builtins.fetchTarball { url = "https://github.com/NixOS/nixpkgs/archive/${src.revision}.tar.gz"; }
    else if src.kind == "git" then
      builtins.fetchGit ({ url = src.location; }
        // (if isCommit src.revision then { rev = src.revision; allRefs = true; } else { ref = src.revision; }))
    else throw "unknown package source kind";

  pkgs = import pkgsRoot {
    system = req.system;
    config = { allowUnfree = req.allowUnfree; };
    overlays = [ ];
  };

  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  toLower = builtins.replaceStrings upper lower;
  join = builtins.concatStringsSep ".";

  # An exact attribute wins; otherwise every attribute equal ignoring case,
  # or equal to "_" + the segment (nixpkgs' spelling of names that start
  # with a digit), is a candidate.
  candidatesIn = set: seg:
    if builtins.hasAttr seg set then [ seg ]
    else
      let l = toLower seg;
      in builtins.filter (n: let ln = toLower n; in ln == l || ln == "_" + l) (builtins.attrNames set);

  walk = value: segs: path:
    if segs == [ ] then { found = value; inherit path; }
    else
      let isSet = builtins.tryEval (builtins.isAttrs value);
      in
      if !isSet.success then { error = "eval-error"; inherit path; }
      else if !isSet.value then { error = "not-found"; path = path ++ [ (builtins.head segs) ]; }
      else
        let
          seg = builtins.head segs;
          cands = builtins.sort builtins.lessThan (candidatesIn value seg);
        in
        if cands == [ ] then { error = "not-found"; path = path ++ [ seg ]; }
        else if builtins.length cands > 1 then {
          error = "ambiguous";
          inherit path;
          candidates = map (c: join (path ++ [ c ])) cands;
        }
        else
          let
            attr = builtins.head cands;
            child = builtins.tryEval value.${attr};
          in
          if !child.success then { error = "eval-error"; path = path ++ [ attr ]; }
          else walk child.value (builtins.tail segs) (path ++ [ attr ]);

  # Outputs an image wants: what nixpkgs installs into a profile, minus
  # documentation (nobody reads man pages inside a container).
  docOutputs = [ "man" "doc" "devdoc" "info" ];
  outputsOf = v:
    let
      available = v.outputs or [ "out" ];
      wanted = v.meta.outputsToInstall or [ (v.outputName or "out") ];
      chosen = builtins.filter (o: builtins.elem o available && !(builtins.elem o docOutputs)) wanted;
    in
    if chosen == [ ] then [ (v.outputName or "out") ] else chosen;

  describe = v: {
    drvPath = v.drvPath;
    outputs = builtins.listToAttrs (map (o: { name = o; value = v.${o}.outPath; }) (outputsOf v));
  };

  resolve = name:
    let
      r = walk pkgs (builtins.filter builtins.isString (builtins.split "\\." name)) [ ];
      attrPath = join r.path;
    in
    if r ? error then { inherit name attrPath; error = r.error; candidates = r.candidates or [ ]; }
    else
      let
        isDrv = builtins.tryEval (builtins.isAttrs r.found && (r.found.type or null) == "derivation");
        described = builtins.tryEval (let d = describe r.found; in builtins.deepSeq d d);
      in
      if !isDrv.success then { inherit name attrPath; error = "eval-error"; candidates = [ ]; }
      else if !isDrv.value then { inherit name attrPath; error = "not-a-package"; candidates = [ ]; }
      else if !described.success then { inherit name attrPath; error = "eval-error"; candidates = [ ]; }
      else { inherit name attrPath; inherit (described.value) drvPath outputs; };

  # The same walk with nothing caught, so the first error is Nix's own message.
  force = value: segs:
    if segs == [ ] then value
    else force value.${builtins.head (candidatesIn value (builtins.head segs))} (builtins.tail segs);
  explain = name:
    let v = force pkgs (builtins.filter builtins.isString (builtins.split "\\." name));
    in builtins.deepSeq (describe v) "no error";
in
if req.probe or false then builtins.length (builtins.attrNames pkgs)
else if req.explain or null != null then explain req.explain
else map resolve req.names
