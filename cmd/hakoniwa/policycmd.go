package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hakoniwa-go/hakoniwa/policy"
	"github.com/hakoniwa-go/hakoniwa/profiles"
	"github.com/spf13/cobra"
)

func newPolicyCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check, show and list sandbox policies",
		Long: `Check, show and list sandbox policies: the files that 'hakoniwa run
--config' loads (1.x config files and 0.5 policy files), and the built-in
profiles that 'hakoniwa run --profile' loads.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{errors.New("policy: want a subcommand: check, show or list")}
		},
	}
	cmd.AddCommand(newPolicyCheckCmd(stdout), newPolicyShowCmd(stdout), newPolicyListCmd(stdout))
	return cmd
}

func completeTOML(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"toml"}, cobra.ShellCompDirectiveFilterFileExt
}

func newPolicyCheckCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE...",
		Short: "Check policy files, with their includes",
		Long: `Render, parse and check each FILE with its includes, as 'hakoniwa run
--config FILE' would. Each problem is printed as one line:

    file:line:col: key: message

The exit status is 0 when every FILE is valid, and 1 when one is not.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("policy check: want one or more FILEs")}
			}
			return nil
		},
		ValidArgsFunction: completeTOML,
		RunE: func(_ *cobra.Command, args []string) error {
			bad := false
			for _, name := range args {
				p, err := policy.Load(name)
				if err != nil {
					bad = true
					var list policy.ErrorList
					var one *policy.Error
					var pe *fs.PathError
					switch {
					case errors.As(err, &list), errors.As(err, &one):
						fmt.Fprintln(stdout, err)
					case errors.As(err, &pe) && pe.Path == name:
						fmt.Fprintf(stdout, "%s: %v\n", name, pe.Err)
					default:
						fmt.Fprintf(stdout, "%s: %v\n", name, err)
					}
					continue
				}
				files := "1 file"
				if n := len(p.Files); n > 1 {
					files = fmt.Sprintf("%d files", n)
				}
				fmt.Fprintf(stdout, "%s: ok (%s format, %s)\n", name, p.Format, files)
			}
			if bad {
				return exitCode(1)
			}
			return nil
		},
	}
}

func newPolicyShowCmd(stdout io.Writer) *cobra.Command {
	var format, profile string
	cmd := &cobra.Command{
		Use:   "show [--format toml|json] [--profile NAME | FILE]",
		Short: "Print the effective policy: rendered, with its includes merged",
		Long: `Print the effective policy of FILE, of a built-in profile, or with neither
the embedded default policy: its templates rendered and its includes merged,
in the 1.x format (a 0.5 file is shown converted). The TOML output is itself
a valid config file, so it is a starting point for a policy of your own.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{errors.New("policy show: want at most one FILE")}
			}
			if len(args) == 1 && profile != "" {
				return usageError{errors.New("policy show: FILE and --profile are exclusive")}
			}
			if format != "toml" && format != "json" {
				return usageError{fmt.Errorf("--format %q: want toml or json", format)}
			}
			return nil
		},
		ValidArgsFunction: completeTOML,
		RunE: func(_ *cobra.Command, args []string) error {
			var p *policy.Policy
			var err error
			switch {
			case len(args) == 1:
				p, err = policy.Load(args[0])
			case profile != "":
				p, err = loadProfile(profile)
			default:
				p, err = policy.Default()
			}
			if err != nil {
				return err
			}
			var out []byte
			if format == "json" {
				out, err = p.JSON()
			} else {
				out, err = p.TOML()
				header := fmt.Sprintf("# The effective policy of %s, rendered and merged.\n", fileList(p.Files))
				out = append([]byte(header), out...)
			}
			if err != nil {
				return err
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "toml", "the output `FORMAT`: toml or json")
	cmd.Flags().StringVar(&profile, "profile", "", "show the built-in profile `NAME`")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"toml", "json"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RegisterFlagCompletionFunc("profile", cobra.FixedCompletions(profiles.Names(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newPolicyListCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the built-in profiles",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			w := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
			for _, name := range profiles.Names() {
				fmt.Fprintf(w, "%s\t%s\n", name, profiles.Summary(name))
			}
			return w.Flush()
		},
	}
}

// fileList names files for a TOML comment of one line that rendering as
// a template leaves alone: a name with an unusual character is quoted,
// and "{{" is broken up.
func fileList(files []string) string {
	names := make([]string, len(files))
	for i, f := range files {
		if strconv.Quote(f) != `"`+f+`"` || strings.ContainsAny(f, " ,") {
			f = strconv.Quote(f)
		}
		names[i] = strings.ReplaceAll(f, "{{", "{ {")
	}
	return strings.Join(names, ", ")
}

// completeEnv completes NAME of --setenv from the caller's environment.
func completeEnv(_ *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}
