package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/crib-runtime/crib/api/config"
	"github.com/crib-runtime/crib/image"
)

// importUsage is printed by `cribd import -h` and on bad usage.
const importUsage = `usage: cribd import [--config FILE] [--log-level LEVEL] ARCHIVE...

Loads each ARCHIVE, a docker-archive ("docker save", "skopeo copy ...
docker-archive:") or an oci-archive ("skopeo copy ... oci-archive:"),
into crib's image store under the names the archive gives its images,
and prints one line per name: NAME IMAGE-ID ("<none>" for an unnamed
image). It works while cribd runs: the store is shared through its locks.
`

// runImport is `cribd import`: the air-gapped counterpart of a pull. It
// opens the image store cribd's config names and copies each archive into
// it. It never shuts the store down: that would unmount the layers of the
// containers a running cribd has mounted. (So, run while cribd is down, it
// leaves the overlay driver's private bind mount of its home directory in
// place, as cribd's own start would make it.)
func runImport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cribd import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage); fs.PrintDefaults() }
	src := configFlags(fs)
	logLevel := fs.String("log-level", "warn", "log level (trace, debug, info, warn, error)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("import: name at least one archive")
	}
	cfg, _, err := config.LoadSources(src(fs))
	if err != nil {
		return err
	}
	cfg.Log.Level = *logLevel
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := newLogger(cfg.Log)
	images, err := newImageService(cfg, nil, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var failed []string
	for _, path := range fs.Args() {
		imported, err := images.Import(ctx, path)
		for _, imp := range imported {
			printImported(stdout, imp)
		}
		if err != nil {
			fmt.Fprintf(stderr, "cribd import: %v\n", err)
			failed = append(failed, path)
			if ctx.Err() != nil {
				break
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("import failed for %s", strings.Join(failed, ", "))
	}
	return nil
}

// printImported prints one "NAME ID" line per name of imp.
func printImported(w io.Writer, imp image.Imported) {
	if len(imp.Names) == 0 {
		fmt.Fprintf(w, "<none> %s\n", imp.ID)
		return
	}
	for _, n := range imp.Names {
		fmt.Fprintf(w, "%s %s\n", n, imp.ID)
	}
}

// isImport reports whether args (os.Args[1:]) ask for the subcommand.
func isImport(args []string) bool { return len(args) > 0 && args[0] == "import" }

// mainImport runs the subcommand and exits.
func mainImport(args []string) {
	err := runImport(args, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cribd: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}
