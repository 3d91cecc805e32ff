# The project's own test package set, shaped like nixpkgs.
#
# nixpkgs and the binary cache are unreachable here, so the registry's tests
# import this file exactly like a user's private package set
# (`NIXERY_PKGS_PATH=tests/pkgs`). It is written with `builtins.derivation`
# only; every builder is the static busybox, and every runtime reference is a
# store path string in an output (a `#!${busybox}/bin/sh` line or a symlink
# into `${busybox}`), so the binaries run inside an image with nothing from
# the host. Builders only use store paths, so the set also builds with
# `sandbox = true`; store paths depend on the host's busybox binary: evaluate
# to get them, never compare them across machines.
#
# Arguments: the ones nixpkgs accepts. `system` (default: the current system),
# `config` (only `allowUnfree` and `allowBroken` are read), anything else
# (`overlays`, `crossSystem`, ...) is accepted and ignored.
#
# Environment read at evaluation time:
#   NIXERY_TEST_LARGE_MIB   size of the large* packages' data, in MiB (default 64)
#   NIXPKGS_ALLOW_UNFREE=1  like nixpkgs: same as config.allowUnfree = true
#   NIXPKGS_ALLOW_BROKEN=1  like nixpkgs: same as config.allowBroken = true
#
# Attributes, and the test scenario each one exists for:
#
#   Packages of the `shell` meta-package and the ones always added
#     busybox          busybox-1.35.0: the host's static busybox copied into
#                      bin/busybox plus one symlink per applet; the builder of
#                      everything else and the runtime of every script.
#     bashInteractive  bash-interactive-5.2-p15: bin/bash (a wrapper exec'ing
#                      busybox's ash) and bin/sh; `Cmd ["bash"]` images.
#     coreutils        coreutils-9.3: bin/ symlinks (env, ls, cat, echo, id,
#                      true, ...) into busybox; the /usr/bin/env link.
#     moreutils        moreutils-0.67: bin/sponge, bin/ts, bin/chronic scripts.
#     nano             nano-7.2: bin/nano (a script running busybox vi).
#     cacert           nss-cacert-3.95: etc/ssl/certs/ca-bundle.crt (a small
#                      PEM-looking file); SSL_CERT_FILE in the image config.
#     iana-etc         iana-etc-20231227: etc/services, etc/protocols.
#
#   Ordinary packages
#     hello            hello-2.12.1: bin/hello prints "Hello, world!" (GNU
#                      hello's -g/--greeting and --version work); the simplest
#                      image, and the chroot test of runtime references.
#     libfoo           libfoo-1.2.3: a library (lib/, share/) and no binary.
#     foo              foo-1.0: bin/foo reads libfoo's data. With fooBar:
#                      closures that overlap (libfoo, busybox), layer sharing.
#     fooBar           foo-bar-2.0: bin/foo-bar, also uses libfoo; a
#                      mixed-case top-level attribute (`foobar` must find it).
#     SDL2             SDL2-2.28.5: mixed-case top-level attribute, name
#                      starting upper case; lib/, include/, bin/sdl2-config.
#     Ambiguous        Ambiguous-1.0 } two attributes that differ only in case:
#     ambiguous        ambiguous-1.0 } `ambiguous` vs a case-folded lookup.
#                      Both have bin/ambiguous printing their own attribute.
#                      The exact spelling wins: `ambiguous` is the lower one.
#     CaseTwin         case-twin-upper-1.0 } differ only in case and neither is
#     caseTwin         case-twin-lower-1.0 } all lowercase: `casetwin` matches
#                      both case-insensitively, an ambiguity to report.
#     _7zz             7zz-23.01: a name starting with a digit (`7zz` maps to
#                      `_7zz` like in nixpkgs); bin/7zz.
#     multiOutput      multi-output-1.0: outputs out (lib/), bin (bin/,
#                      references out), man (share/man/); meta.outputsToInstall
#                      = [ "bin" "man" ]; split outputs in one image.
#     singleFile       single-file-1.0: the output is one regular file, not a
#                      directory (like nixpkgs' writeText); tar edge case.
#
#   Nested sets (dotted attribute paths, case folding at every level)
#     python3Packages.urllib3   python3.11-urllib3-2.0.7
#     python3Packages.requests  python3.11-requests-2.31.0, depends at runtime
#                               on urllib3 (nix-support/propagated-build-inputs)
#     haskellPackages.HUnit     HUnit-1.6.2.0: a mixed-case second-level name
#                               (`haskellpackages.hunit` must find it)
#
#   Large packages for layer-packing benchmarks; the data is
#   share/<pname>/data.bin of exactly NIXERY_TEST_LARGE_MIB MiB, and
#   bin/<pname> prints its size in bytes.
#     large                large-1.0: copies of the busybox binary (compresses
#                          like real executables, about 2:1).
#     largeCompressible    large-compressible-1.0: repeated text (compresses
#                          several hundred to one).
#     largeIncompressible  large-incompressible-1.0: random bytes from
#                          /dev/urandom (does not compress; each build differs).
#
#   Failures, one of each kind
#     broken           broken-1.0: evaluates, its build fails with a clear
#                      message on stderr (build failure reporting).
#     markedBroken     marked-broken-1.0: meta.broken = true; like nixpkgs it
#                      throws unless config.allowBroken.
#     unfree           unfree-tool-1.0: meta.license.free = false; like nixpkgs
#                      its outPath/drvPath throw unless config.allowUnfree.
#     throws           `throw`: a catchable evaluation error at the attribute
#                      itself (like nixpkgs' removed-package aliases).
#     assertFails      an `assert` failure (catchable by builtins.tryEval).
#     aborts           aborts-1.0: a package whose derivation calls `abort`;
#                      name and type evaluate, outPath kills the WHOLE
#                      evaluation (builtins.tryEval cannot catch it).
#     missingDependency  missing-dependency-1.0: a package referring to an
#                      attribute that does not exist in this set; also kills
#                      the whole evaluation when its outPath is forced.
#     sleeper          sleeper-1.0: its build sleeps NIXERY_TEST_SLEEP_S seconds
#                      (default 600) before finishing: NIX_TIMEOUT kills it,
#                      and tests can crash a builder while Nix runs.
#
#   Not packages
#     notAPackage          a string
#     notAPackageSet       an attribute set without any derivation
#     notAPackageFunction  a function (like nixpkgs' callPackage)
{ system ? builtins.currentSystem, config ? { }, ... }:
let
  cfg = if builtins.isFunction config then config { } else config;
  allowUnfree = cfg.allowUnfree or false || builtins.getEnv "NIXPKGS_ALLOW_UNFREE" == "1";
  allowBroken = cfg.allowBroken or false || builtins.getEnv "NIXPKGS_ALLOW_BROKEN" == "1";

  largeMiB =
    let s = builtins.getEnv "NIXERY_TEST_LARGE_MIB";
    in
    if s == "" then 64
    else if builtins.match "0|[1-9][0-9]{0,5}" s != null then builtins.fromJSON s
    else throw "NIXERY_TEST_LARGE_MIB must be a whole number of MiB, got '${s}'";

  # Debian's busybox-static installs /bin/busybox. busybox picks its applet
  # from argv[0], and Nix runs a builder with argv[0] = the builder's base
  # name, so a store file "<hash>-busybox" is no applet: import the directory
  # holding busybox, filtered down to that one file, and run
  # "<hash>-.../busybox". On merged-/usr systems /bin is a symlink (which
  # builtins.path would copy as a symlink): import /usr/bin instead.
  hostBusyboxDir = builtins.path {
    name = "busybox-static-host";
    path = if ((builtins.readDir /.).bin or "") == "symlink" then /usr/bin else /bin;
    filter = path: type: baseNameOf path == "busybox" && type == "regular";
  };

  hasOutput = outs: o: builtins.elem o outs;

  # nixpkgs' lib.extendDerivation, reduced: add attributes (meta, pname,
  # version, ...) to a derivation and to each of its outputs, and make
  # outPath/drvPath of all of them depend on `valid` (which throws when the
  # package must not evaluate, like nixpkgs' check-meta).
  extendDerivation = valid: extra: drv:
    let
      outs = drv.outputs or [ "out" ];
      common = drv // extra // outputSet // { all = map (o: outputSet.${o}) outs; };
      outputSet = builtins.listToAttrs (map
        (o: {
          name = o;
          value = common // {
            inherit (drv.${o}) type outputName;
            outPath = assert valid; drv.${o}.outPath;
            drvPath = assert valid; drv.${o}.drvPath;
          };
        })
        outs);
    in
    common // {
      outPath = assert valid; drv.outPath;
      drvPath = assert valid; drv.drvPath;
    };

  # Like nixpkgs' check-meta: unfree and broken packages throw (a catchable
  # error) when their outPath or drvPath is forced.
  checkMeta = name: meta:
    let
      unfreeLicense = !(meta.license.free or true);
      reason =
        if unfreeLicense && !allowUnfree then
          "has an unfree license (‘${meta.license.shortName or "unfree"}’)"
        else if (meta.broken or false) && !allowBroken then
          "is marked as broken"
        else null;
      hint =
        if unfreeLicense then
          "set config.allowUnfree = true (or NIXPKGS_ALLOW_UNFREE=1) to allow it"
        else
          "set config.allowBroken = true (or NIXPKGS_ALLOW_BROKEN=1) to allow it";
    in
    reason == null || throw "Package ‘${name}’ ${reason}, refusing to evaluate; ${hint}.";

  # The stdenv.mkDerivation of this set. `script` runs under busybox sh -e
  # with PATH = busybox's applets; everything not listed below is passed to
  # the derivation as an environment variable.
  mkPkg =
    { pname
    , version
    , script
    , name ? "${pname}-${version}"
    , outputs ? [ "out" ]
    , meta ? { }
    , passthru ? { }
    , ...
    }@args:
    let
      drv = builtins.derivation (builtins.removeAttrs args [ "script" "meta" "passthru" ] // {
        inherit name system outputs;
        builder = "${busybox}/bin/busybox";
        args = [ "sh" "-ec" script ];
        PATH = "${busybox}/bin";
      });
      fullMeta = {
        outputsToInstall =
          [ (if hasOutput outputs "bin" then "bin" else "out") ]
          ++ (if hasOutput outputs "man" then [ "man" ] else [ ]);
      } // meta;
    in
    extendDerivation (checkMeta name fullMeta) ({ inherit pname version; meta = fullMeta; } // passthru) drv;

  # Shell snippet writing an executable script at $out/<path>. The text is
  # copied verbatim (quoted here-document): Nix interpolations are expanded,
  # shell variables are not.
  writeScript = path: text: ''
    mkdir -p "$(dirname "$out/${path}")"
    cat > "$out/${path}" <<'NIXERY_EOF'
    ${text}NIXERY_EOF
    chmod 0555 "$out/${path}"
  '';

  # Shell snippet writing a data file at $out/<path> (same quoting).
  writeFile = path: text: ''
    mkdir -p "$(dirname "$out/${path}")"
    cat > "$out/${path}" <<'NIXERY_EOF'
    ${text}NIXERY_EOF
  '';

  sh = "#!${busybox}/bin/sh";

  busybox =
    let
      version = "1.35.0";
      bb = "${hostBusyboxDir}/busybox";
      drv = builtins.derivation {
        name = "busybox-${version}";
        inherit system;
        builder = bb;
        args = [
          "sh"
          "-ec"
          ''
            ${bb} mkdir -p "$out/bin"
            ${bb} cp ${bb} "$out/bin/busybox"
            ${bb} chmod 0555 "$out/bin/busybox"
            # One symlink per applet, to "$out/bin/busybox" (/proc/self/exe);
            # one process instead of one `ln` per applet (10 ms, not 400 ms).
            "$out/bin/busybox" --install -s "$out/bin"
          ''
        ];
      };
      meta = {
        description = "The host's static busybox with one symlink per applet";
        mainProgram = "busybox";
        outputsToInstall = [ "out" ];
      };
    in
    extendDerivation true { pname = "busybox"; inherit version meta; } drv;

  coreutilsPrograms = [
    "[" "base64" "basename" "cat" "chgrp" "chmod" "chown" "chroot" "cksum"
    "cp" "cut" "date" "dd" "df" "dirname" "du" "echo" "env" "expand" "expr"
    "factor" "false" "fold" "groups" "head" "hostid" "id" "link" "ln"
    "logname" "ls" "md5sum" "mkdir" "mkfifo" "mknod" "mktemp" "mv" "nl"
    "nproc" "od" "paste" "printf" "pwd" "readlink" "realpath" "rm" "rmdir"
    "seq" "sha1sum" "sha256sum" "sha512sum" "shred" "shuf" "sleep" "sort"
    "stat" "stty" "sync" "tac" "tail" "tee" "test" "timeout" "touch" "tr"
    "true" "truncate" "tty" "uname" "unexpand" "uniq" "unlink" "uptime"
    "users" "wc" "who" "whoami" "yes"
  ];

  pkgs = {
    inherit busybox;

    hello = mkPkg {
      pname = "hello";
      version = "2.12.1";
      meta = {
        description = "A program that produces a familiar, friendly greeting";
        license = { shortName = "gpl3Plus"; free = true; };
        mainProgram = "hello";
      };
      script = writeScript "bin/hello" ''
        ${sh}
        greeting='Hello, world!'
        while [ $# -gt 0 ]; do
          case "$1" in
            --version|-v) echo 'hello (GNU Hello) 2.12.1'; exit 0 ;;
            --help|-h) echo 'Usage: hello [-g TEXT|--greeting=TEXT] [--version]'; exit 0 ;;
            -g) shift; greeting="$1" ;;
            --greeting=*) greeting="''${1#--greeting=}" ;;
            *) echo "hello: unrecognized option '$1'" >&2; exit 1 ;;
          esac
          shift
        done
        printf '%s\n' "$greeting"
      '' + writeFile "share/man/man1/hello.1" ''
        .TH HELLO 1
        .SH NAME
        hello \- friendly greeting program
      '';
    };

    bashInteractive = mkPkg {
      pname = "bash-interactive";
      version = "5.2-p15";
      meta = {
        description = "bash stand-in: busybox's ash (busybox has no bash applet)";
        mainProgram = "bash";
      };
      script = writeScript "bin/bash" ''
        ${sh}
        exec ${busybox}/bin/busybox sh "$@"
      '' + ''
        ln -s ${busybox}/bin/busybox "$out/bin/sh"
      '';
    };

    coreutils = mkPkg {
      pname = "coreutils";
      version = "9.3";
      programs = coreutilsPrograms;
      meta.description = "coreutils stand-in: symlinks into busybox";
      script = ''
        mkdir -p "$out/bin"
        available=" $(busybox --list | tr '\n' ' ') "
        for p in $programs; do
          case "$available" in
            *" $p "*) ln -s ${busybox}/bin/busybox "$out/bin/$p" ;;
          esac
        done
      '';
    };

    moreutils = mkPkg {
      pname = "moreutils";
      version = "0.67";
      meta.description = "moreutils stand-in: sponge, ts and chronic as scripts";
      script = writeScript "bin/sponge" ''
        ${sh}
        # sponge [FILE]: soak up standard input, then write it to FILE.
        tmp=$(${busybox}/bin/mktemp) || exit 1
        ${busybox}/bin/cat > "$tmp"
        if [ $# -eq 0 ]; then ${busybox}/bin/cat "$tmp"; else ${busybox}/bin/cat "$tmp" > "$1"; fi
        status=$?
        ${busybox}/bin/rm -f "$tmp"
        exit $status
      '' + writeScript "bin/ts" ''
        ${sh}
        # ts [FORMAT]: prefix every line of standard input with a timestamp.
        format="''${1:-%b %d %H:%M:%S}"
        while IFS= read -r line; do
          printf '%s %s\n' "$(${busybox}/bin/date +"$format")" "$line"
        done
      '' + writeScript "bin/chronic" ''
        ${sh}
        # chronic COMMAND...: run COMMAND quietly unless it fails.
        out=$(${busybox}/bin/mktemp) || exit 1
        "$@" > "$out" 2>&1
        status=$?
        [ $status -eq 0 ] || ${busybox}/bin/cat "$out"
        ${busybox}/bin/rm -f "$out"
        exit $status
      '';
    };

    nano = mkPkg {
      pname = "nano";
      version = "7.2";
      meta = {
        description = "nano stand-in: runs busybox vi";
        mainProgram = "nano";
      };
      script = writeScript "bin/nano" ''
        ${sh}
        case "$1" in
          --version|-V) echo ' GNU nano, version 7.2'; exit 0 ;;
        esac
        exec ${busybox}/bin/vi "$@"
      '' + writeFile "etc/nanorc" ''
        set tabsize 4
      '';
    };

    cacert = mkPkg {
      pname = "nss-cacert";
      version = "3.95";
      meta.description = "A small PEM-looking CA bundle (not a real certificate)";
      script = writeFile "etc/ssl/certs/ca-bundle.crt" ''
        # Test CA bundle of the nixery test package set: not a real CA.
        Nixery Test Root CA
        ===================
        -----BEGIN CERTIFICATE-----
        TklYRVJZIFRFU1QgUEFDS0FHRSBTRVQ6IHRoaXMgaXMgbm90IGEgcmVhbCBjZXJ0aWZp
        Y2F0ZSwgb25seSBhIGZpbGUgdGhhdCBsb29rcyBsaWtlIG9uZSBmb3IgdGhlIHRlc3Rz
        IG9mIHRoZSByZWdpc3RyeS4=
        -----END CERTIFICATE-----
      '' + ''
        ln -s ca-bundle.crt "$out/etc/ssl/certs/ca-certificates.crt"
      '';
    };

    iana-etc = mkPkg {
      pname = "iana-etc";
      version = "20231227";
      meta.description = "A few lines of /etc/services and /etc/protocols";
      script = writeFile "etc/services" ''
        ftp               21/tcp
        ssh               22/tcp
        domain            53/tcp
        domain            53/udp
        http              80/tcp     www
        https            443/tcp
      '' + writeFile "etc/protocols" ''
        ip       0  IP        # internet protocol, pseudo protocol number
        icmp     1  ICMP      # internet control message protocol
        tcp      6  TCP       # transmission control protocol
        udp     17  UDP       # user datagram protocol
        ipv6-icmp 58 IPv6-ICMP # ICMP for IPv6
      '';
    };

    libfoo = mkPkg {
      pname = "libfoo";
      version = "1.2.3";
      meta.description = "A library shared by foo and fooBar";
      script = writeFile "share/libfoo/greeting.txt" ''
        greetings from libfoo 1.2.3
      '' + writeFile "lib/libfoo.so.1" ''
        not really a shared object: libfoo 1.2.3
      '' + ''
        ln -s libfoo.so.1 "$out/lib/libfoo.so"
      '';
    };

    foo = mkPkg {
      pname = "foo";
      version = "1.0";
      meta = { description = "A tool using libfoo"; mainProgram = "foo"; };
      script = writeScript "bin/foo" ''
        ${sh}
        printf 'foo 1.0: '
        exec ${busybox}/bin/cat ${pkgs.libfoo}/share/libfoo/greeting.txt
      '';
    };

    fooBar = mkPkg {
      pname = "foo-bar";
      version = "2.0";
      meta = { description = "Another tool using libfoo (mixed-case attribute)"; mainProgram = "foo-bar"; };
      script = writeScript "bin/foo-bar" ''
        ${sh}
        printf 'foo-bar 2.0: '
        exec ${busybox}/bin/cat ${pkgs.libfoo}/share/libfoo/greeting.txt
      '';
    };

    SDL2 = mkPkg {
      pname = "SDL2";
      version = "2.28.5";
      meta.description = "SDL2 stand-in (mixed-case top-level attribute)";
      script = writeFile "lib/libSDL2-2.0.so.0" ''
        not really a shared object: SDL2 2.28.5
      '' + writeFile "include/SDL2/SDL.h" ''
        #define SDL_MAJOR_VERSION 2
      '' + writeScript "bin/sdl2-config" ''
        ${sh}
        echo 2.28.5
      '';
    };

    Ambiguous = mkPkg {
      pname = "Ambiguous";
      version = "1.0";
      meta.description = "Differs from `ambiguous` only in case";
      script = writeScript "bin/ambiguous" ''
        ${sh}
        echo 'Ambiguous (upper case A)'
      '';
    };

    ambiguous = mkPkg {
      pname = "ambiguous";
      version = "1.0";
      meta.description = "Differs from `Ambiguous` only in case";
      script = writeScript "bin/ambiguous" ''
        ${sh}
        echo 'ambiguous (lower case a)'
      '';
    };

    CaseTwin = mkPkg {
      pname = "case-twin-upper";
      version = "1.0";
      meta.description = "Differs from `caseTwin` only in case";
      script = writeScript "bin/case-twin" ''
        ${sh}
        echo 'CaseTwin'
      '';
    };

    caseTwin = mkPkg {
      pname = "case-twin-lower";
      version = "1.0";
      meta.description = "Differs from `CaseTwin` only in case";
      script = writeScript "bin/case-twin" ''
        ${sh}
        echo 'caseTwin'
      '';
    };

    _7zz = mkPkg {
      pname = "7zz";
      version = "23.01";
      meta.description = "A package whose name starts with a digit";
      script = writeScript "bin/7zz" ''
        ${sh}
        echo '7-Zip (z) 23.01 (test stand-in)'
      '';
    };

    multiOutput = mkPkg {
      pname = "multi-output";
      version = "1.0";
      outputs = [ "out" "bin" "man" ];
      meta = {
        description = "Split outputs: out (library), bin (tool), man (manual)";
        mainProgram = "multi-tool";
        outputsToInstall = [ "bin" "man" ];
      };
      script = ''
        mkdir -p "$out/lib" "$bin/bin" "$man/share/man/man1"
        echo 'multi-output 1.0 library' > "$out/lib/libmulti.so.1"
        cat > "$bin/bin/multi-tool" <<EOF
        ${sh}
        printf 'multi-tool 1.0 using '
        exec ${busybox}/bin/cat $out/lib/libmulti.so.1
        EOF
        chmod 0555 "$bin/bin/multi-tool"
        printf '.TH MULTI-TOOL 1\n.SH NAME\nmulti-tool \\- test tool\n' > "$man/share/man/man1/multi-tool.1"
      '';
    };

    singleFile = mkPkg {
      pname = "single-file";
      version = "1.0";
      meta.description = "The output is one regular file, not a directory";
      script = ''
        echo 'single-file 1.0: an output that is a file' > "$out"
      '';
    };

    python3Packages = {
      urllib3 = mkPkg {
        pname = "urllib3";
        version = "2.0.7";
        name = "python3.11-urllib3-2.0.7";
        meta.description = "urllib3 stand-in";
        script = writeFile "lib/python3.11/site-packages/urllib3/__init__.py" ''
          __version__ = "2.0.7"
        '';
      };

      requests = mkPkg {
        pname = "requests";
        version = "2.31.0";
        name = "python3.11-requests-2.31.0";
        meta.description = "requests stand-in, depends on urllib3";
        script = writeFile "lib/python3.11/site-packages/requests/__init__.py" ''
          import urllib3
          __version__ = "2.31.0"
        '' + ''
          mkdir -p "$out/nix-support"
          echo ${pkgs.python3Packages.urllib3} > "$out/nix-support/propagated-build-inputs"
        '';
      };
    };

    haskellPackages = {
      HUnit = mkPkg {
        pname = "HUnit";
        version = "1.6.2.0";
        meta.description = "HUnit stand-in (mixed-case second-level attribute)";
        script = writeFile "share/doc/HUnit-1.6.2.0/README" ''
          HUnit is a unit testing framework for Haskell.
        '' + writeFile "lib/ghc-9.4.8/HUnit-1.6.2.0/Test/HUnit.hi" ''
          not really an interface file
        '';
      };
    };

    large = mkLarge {
      pname = "large";
      description = "copies of the busybox binary (compresses like executables)";
      fill = ''
        while [ "$(stat -c %s "$data")" -lt "$bytes" ]; do
          cat ${busybox}/bin/busybox >> "$data"
        done
        truncate -s "$bytes" "$data"
      '';
    };

    largeCompressible = mkLarge {
      pname = "large-compressible";
      description = "repeated text (compresses very well)";
      fill = ''
        yes 'nixery large-compressible test data, the same line again and again.' \
          | head -c 1048576 > chunk
        while [ "$(stat -c %s "$data")" -lt "$bytes" ]; do
          cat chunk >> "$data"
        done
      '';
    };

    largeIncompressible = mkLarge {
      pname = "large-incompressible";
      description = "random bytes (does not compress; differs on every build)";
      fill = ''
        head -c "$bytes" /dev/urandom >> "$data"
      '';
    };

    broken = mkPkg {
      pname = "broken";
      version = "1.0";
      meta.description = "Evaluates, but its build always fails";
      script = ''
        echo "broken-1.0: this package always fails to build (nixery test package set)" >&2
        exit 1
      '';
    };

    sleeper = builtins.derivation {
      name = "sleeper-1.0";
      inherit system;
      builder = "${busybox}/bin/busybox";
      args = [ "sh" "-c" "${busybox}/bin/busybox sleep \"$seconds\" && ${busybox}/bin/busybox mkdir -p \"$out\"" ];
      seconds = let s = builtins.getEnv "NIXERY_TEST_SLEEP_S"; in if s == "" then "600" else s;
    };

    markedBroken = mkPkg {
      pname = "marked-broken";
      version = "1.0";
      meta = { description = "meta.broken = true"; broken = true; };
      script = writeScript "bin/marked-broken" ''
        ${sh}
        echo 'marked-broken 1.0'
      '';
    };

    unfree = mkPkg {
      pname = "unfree-tool";
      version = "1.0";
      meta = {
        description = "An unfree package";
        license = { shortName = "unfree"; fullName = "Unfree"; free = false; };
        mainProgram = "unfree-tool";
      };
      script = writeScript "bin/unfree-tool" ''
        ${sh}
        echo 'unfree-tool 1.0'
      '';
    };

    throws = throw "throws: this package was removed from the nixery test package set (a catchable evaluation error)";

    assertFails =
      let isDarwin = builtins.match ".*-darwin" system != null;
      in
      assert isDarwin;
      mkPkg {
        pname = "assert-fails";
        version = "1.0";
        script = "touch $out";
      };

    aborts = mkPkg {
      pname = "aborts";
      version = "1.0";
      meta.description = "Its derivation calls abort: uncatchable";
      src = abort "aborts: this package aborts the whole evaluation (nixery test package set)";
      script = "touch $out";
    };

    missingDependency = mkPkg {
      pname = "missing-dependency";
      version = "1.0";
      meta.description = "Refers to an attribute this set does not have";
      buildInputs = [ pkgs.libfoo pkgs.notInThisPackageSet ];
      script = "touch $out";
    };

    notAPackage = "a string, not a package";
    notAPackageSet = { description = "an attribute set without derivations"; answer = 42; };
    notAPackageFunction = { pname }: pname;
  };

  # The large* packages: share/<pname>/data.bin of exactly largeMiB MiB,
  # filled by `fill` (appending to "$data" until "$bytes" bytes), and
  # bin/<pname> printing its size.
  mkLarge = { pname, description, fill }: mkPkg {
    inherit pname;
    version = "1.0";
    sizeMiB = toString largeMiB;
    meta = {
      description = "${toString largeMiB} MiB of ${description}";
      mainProgram = pname;
    };
    script = ''
      mkdir -p "$out/share/${pname}" "$out/bin"
      data="$out/share/${pname}/data.bin"
      bytes=$((sizeMiB * 1048576))
      : > "$data"
      ${fill}
      truncate -s "$bytes" "$data"
      cat > "$out/bin/${pname}" <<EOF
      ${sh}
      exec ${busybox}/bin/stat -c %s $data
      EOF
      chmod 0555 "$out/bin/${pname}"
    '';
  };
in
pkgs
