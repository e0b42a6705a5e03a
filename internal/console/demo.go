package console

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance/calendar"
)

// DemoEngineer is the field engineer `--demo` creates when there is none
// of that id, so the engineer's pages have someone to show.
const DemoEngineer = "ing-demo"

// DemoUser is a console user made for a demo, with its password in clear.
type DemoUser struct {
	Username, Password, Role, About string
}

// CreateDemoUsers gives a newcomer working console logins: "noc", an
// engineer "ingeniero" (bound to DemoEngineer, created if missing) and one
// portal user per customer named after the customer's id. Each gets a new
// random password, also when the user exists from an earlier run, and the
// list is printed to w with the console's URL. A customer whose plan has
// no portal seat left is reported and skipped.
func CreateDemoUsers(ctx context.Context, w io.Writer, users *auth.Users, inv *assets.Store, disp *dispatch.Store, base string, now time.Time) ([]DemoUser, error) {
	if _, err := disp.Engineer(ctx, auth.NOCActor("vigia demo"), DemoEngineer); errors.Is(err, dispatch.ErrNotFound) {
		if _, err := disp.PutEngineer(ctx, auth.NOCActor("vigia demo"), DemoEngineer, dispatch.EngineerInput{
			Name: "Ingeniera de demostración", Email: "ingenieria@vigia.example", HomeCity: "Bogotá", IT: true, Biomedical: true,
			Calendar: dispatch.CalendarSpec{Config: &calendar.Config{Zone: "America/Bogota", Always: true}}}, now); err != nil {
			return nil, fmt.Errorf("console: demo engineer: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("console: demo engineer: %w", err)
	}
	wanted := []struct {
		in    auth.UserInput
		about string
	}{
		{auth.UserInput{Username: "noc", Role: auth.RoleNOC}, "NOC staff: board, outages, ticket queue"},
		{auth.UserInput{Username: "ingeniero", Role: auth.RoleEngineer, EngineerID: DemoEngineer}, "field engineer " + DemoEngineer + ": my visits"},
	}
	customers, err := inv.Customers(ctx, assets.Scope{})
	if err != nil {
		return nil, err
	}
	for _, c := range customers {
		lang := c.Language
		if lang != "en" {
			lang = "es"
		}
		wanted = append(wanted, struct {
			in    auth.UserInput
			about string
		}{auth.UserInput{Username: c.ID, Role: auth.RoleCustomer, CustomerID: c.ID, Language: lang}, "portal of " + c.Name})
	}
	var out []DemoUser
	var skipped []string
	for _, want := range wanted {
		pw, err := demoPassword()
		if err != nil {
			return nil, err
		}
		want.in.Password = pw
		exists, err := users.Exists(ctx, want.in.Username)
		if err != nil {
			return nil, err
		}
		if exists {
			err = users.SetPassword(ctx, want.in.Username, pw)
		} else {
			_, err = users.Create(ctx, want.in, now)
		}
		if errors.Is(err, auth.ErrNoSeats) {
			skipped = append(skipped, fmt.Sprintf("%s (%v)", want.in.Username, err))
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, DemoUser{Username: want.in.Username, Password: pw, Role: want.in.Role, About: want.about})
	}
	fmt.Fprintf(w, "  Web console: %s/console/\n", base)
	for _, u := range out {
		fmt.Fprintf(w, "    %-10s password %s   %s\n", u.Username, u.Password, u.About)
	}
	for _, s := range skipped {
		fmt.Fprintf(w, "    skipped %s\n", s)
	}
	fmt.Fprintln(w)
	return out, nil
}

// demoPassword is 26 random base32 characters (128 bits).
func demoPassword() (string, error) { return strings.ToLower(rand.Text()), nil }
