package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newManCmd(root *cobra.Command, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "man",
		Short: "Write the manual page, hakoniwa(1), in roff",
		Long: `Write the manual page, hakoniwa(1), to standard output. It is made from the
same commands and flags as --help, so it never disagrees with it:

    hakoniwa man > hakoniwa.1 && man ./hakoniwa.1`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := io.WriteString(stdout, manPage(root))
			return err
		},
	}
}

// manPage renders the command tree as one roff manual page.
func manPage(root *cobra.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH HAKONIWA 1 \"\" \"hakoniwa %s\" \"User Commands\"\n", roff(root.Version))
	fmt.Fprintf(&b, ".SH NAME\nhakoniwa \\- %s\n", roff(root.Short))
	b.WriteString(".SH SYNOPSIS\n")
	var cmds []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			if sub.Runnable() && !sub.HasSubCommands() {
				cmds = append(cmds, sub)
			}
			walk(sub)
		}
	}
	walk(root)
	for _, c := range cmds {
		fmt.Fprintf(&b, ".B %s\n", roff(c.CommandPath()))
		if args := strings.TrimSpace(strings.TrimPrefix(c.Use, c.Name())); args != "" {
			b.WriteString(roffLine(args) + "\n")
		}
		b.WriteString(".br\n")
	}
	b.WriteString(".SH DESCRIPTION\n")
	paragraphs(&b, "hakoniwa runs commands in Linux sandboxes built from namespaces, mounts and resource limits, and reports how they ended. See the README for the policy formats and the profiles.")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, ".SS \"%s\"\n", roff(c.CommandPath()))
		long := c.Long
		if long == "" {
			long = c.Short + "."
		}
		paragraphs(&b, long)
		c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Name == "help" {
				return
			}
			name, usage := pflag.UnquoteUsage(f)
			b.WriteString(".TP\n")
			if f.Shorthand != "" {
				fmt.Fprintf(&b, "\\fB\\-%s\\fR, ", roff(f.Shorthand))
			}
			fmt.Fprintf(&b, "\\fB\\-\\-%s\\fR", roff(f.Name))
			if name != "" {
				fmt.Fprintf(&b, " \\fI%s\\fR", roff(name))
			}
			b.WriteByte('\n')
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "-1" && f.DefValue != "0" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(&b, "%s\n", roffLine(usage))
		})
	}
	b.WriteString(".SH EXIT STATUS\n")
	paragraphs(&b, "hakoniwa run exits with the command's own status, 128+N when it was killed by signal N, 125 when the sandbox failed, 126 when the command could not be executed, 127 when it was not found, and 2 for usage errors. hakoniwa policy check exits with 1 when a file is not valid.")
	b.WriteString(".SH SEE ALSO\n.BR bwrap (1),\n.BR namespaces (7),\n.BR user_namespaces (7)\n")
	return b.String()
}

// paragraphs writes text: blank lines separate paragraphs, and indented
// lines are kept as they are, as examples.
func paragraphs(b *strings.Builder, text string) {
	for i, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		if strings.HasPrefix(para, "    ") {
			b.WriteString(".nf\n.RS 4\n")
			for _, line := range strings.Split(para, "\n") {
				b.WriteString(roffLine(strings.TrimPrefix(line, "    ")) + "\n")
			}
			b.WriteString(".RE\n.fi\n")
			continue
		}
		b.WriteString(roffLine(strings.Join(strings.Fields(para), " ")) + "\n")
	}
}

// roff escapes text for roff.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

// roffLine escapes a line of text, which must not start with a control
// character.
func roffLine(s string) string {
	s = roff(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
