package store

import (
	"database/sql"
	"encoding/json"
	"time"

	"github.com/strata-paas/strata/api"
)

// Row structs mirror the tables of migrations/*/001_init.sql. They are
// private: callers see api types only.

type orgRow struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

func (orgRow) TableName() string { return "orgs" }

func (r orgRow) api() *api.Org { return &api.Org{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt.UTC()} }

type spaceRow struct {
	ID        string
	OrgID     string
	Name      string
	CreatedAt time.Time
}

func (spaceRow) TableName() string { return "spaces" }

func (r spaceRow) api() *api.Space {
	return &api.Space{ID: r.ID, OrgID: r.OrgID, Name: r.Name, CreatedAt: r.CreatedAt.UTC()}
}

type userRow struct {
	ID           string
	Name         string
	Admin        bool
	PasswordHash string `gorm:"column:password_hash"`
	Component    string
	CreatedAt    time.Time
}

func (userRow) TableName() string { return "users" }

func (r userRow) api() *api.User {
	return &api.User{ID: r.ID, Name: r.Name, Admin: r.Admin, Component: r.Component, CreatedAt: r.CreatedAt.UTC()}
}

type tokenRow struct {
	Hash        string
	UserID      string
	Description string
	CreatedAt   time.Time
	ExpiresAt   *time.Time
}

func (tokenRow) TableName() string { return "tokens" }

func (r tokenRow) api() *api.Token {
	t := &api.Token{Hash: r.Hash, UserID: r.UserID, Description: r.Description, CreatedAt: r.CreatedAt.UTC()}
	if r.ExpiresAt != nil {
		e := r.ExpiresAt.UTC()
		t.ExpiresAt = &e
	}
	return t
}

type roleRow struct {
	UserID  string
	OrgID   string
	SpaceID string
	Role    string
}

func (roleRow) TableName() string { return "roles" }

func (r roleRow) api() api.RoleBinding {
	return api.RoleBinding{UserID: r.UserID, OrgID: r.OrgID, SpaceID: r.SpaceID, Role: api.Role(r.Role)}
}

type appRow struct {
	ID             string
	SpaceID        string
	Name           string
	State          string
	CurrentRelease int
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (appRow) TableName() string { return "apps" }

func (r appRow) api() *api.App {
	return &api.App{ID: r.ID, SpaceID: r.SpaceID, Name: r.Name, State: api.AppState(r.State),
		CurrentRelease: r.CurrentRelease, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

type buildRow struct {
	Seq         int64 `gorm:"column:seq;->"` // assigned by the database
	ID          string
	AppID       string
	State       string
	SourceBlob  string
	DropletBlob string
	Buildpack   string
	Failure     string
	Reason      string
	Actor       string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (buildRow) TableName() string { return "builds" }

func toBuildRow(b *api.Build) buildRow {
	return buildRow{ID: b.ID, AppID: b.AppID, State: string(b.State), SourceBlob: string(b.SourceBlob),
		DropletBlob: string(b.DropletBlob), Buildpack: b.Buildpack, Failure: string(b.Failure),
		Reason: b.Reason, Actor: b.Actor, CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
}

func (r buildRow) api() *api.Build {
	return &api.Build{ID: r.ID, AppID: r.AppID, State: api.BuildState(r.State), SourceBlob: api.BlobRef(r.SourceBlob),
		DropletBlob: api.BlobRef(r.DropletBlob), Buildpack: r.Buildpack, Failure: api.BuildFailure(r.Failure),
		Reason: r.Reason, Actor: r.Actor, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

type releaseRow struct {
	ID           string
	AppID        string
	Version      int
	BuildID      string
	DropletBlob  string
	Image        string
	ImageBlob    string
	ProcessTypes string // JSON object
	Env          string // JSON object
	Description  string
	Actor        string
	CreatedAt    time.Time
}

func (releaseRow) TableName() string { return "releases" }

func toReleaseRow(r *api.Release) (releaseRow, error) {
	pt, err := jsonMap(r.Processes)
	if err != nil {
		return releaseRow{}, err
	}
	env, err := jsonMap(r.Env)
	if err != nil {
		return releaseRow{}, err
	}
	return releaseRow{ID: r.ID, AppID: r.AppID, Version: r.Version, BuildID: r.BuildID,
		DropletBlob: string(r.DropletBlob), Image: r.Image, ImageBlob: string(r.ImageBlob), ProcessTypes: pt, Env: env, Description: r.Description,
		Actor: r.Actor, CreatedAt: r.CreatedAt}, nil
}

func (r releaseRow) api() (*api.Release, error) {
	out := &api.Release{ID: r.ID, AppID: r.AppID, Version: r.Version, BuildID: r.BuildID,
		DropletBlob: api.BlobRef(r.DropletBlob), Image: r.Image, ImageBlob: api.BlobRef(r.ImageBlob), Description: r.Description, Actor: r.Actor,
		CreatedAt: r.CreatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.ProcessTypes), &out.Processes); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(r.Env), &out.Env); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonMap encodes m as a JSON object; nil becomes {}.
func jsonMap(m map[string]string) (string, error) {
	if m == nil {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

type processRow struct {
	AppID     string
	Type      string
	Instances int
	MemoryMB  int `gorm:"column:memory_mb"`
	DiskMB    int `gorm:"column:disk_mb"`

	HealthCheckType     string
	HealthCheckPath     string
	HealthCheckTimeout  int
	HealthCheckInterval int
	ScaleToZero         int
	Sleeping            bool
}

func (processRow) TableName() string { return "processes" }

func (r processRow) api() api.Process {
	return api.Process{AppID: r.AppID, Type: r.Type, Instances: r.Instances, MemoryMB: r.MemoryMB, DiskMB: r.DiskMB,
		HealthCheck: r.HealthCheckType, HealthCheckPath: r.HealthCheckPath, HealthCheckTimeout: r.HealthCheckTimeout,
		HealthCheckInterval: r.HealthCheckInterval, ScaleToZero: r.ScaleToZero, Sleeping: r.Sleeping}
}

type instanceRow struct {
	ID             string
	AppID          string
	Process        string
	InstanceIndex  int
	ReleaseVersion int
	NodeID         string
	State          string
	Port           int
	Reason         string
	Restarts       int
	Isolation      string
	StartedAt      sql.NullTime
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (instanceRow) TableName() string { return "instances" }

func toInstanceRow(in *api.Instance) instanceRow {
	return instanceRow{ID: in.ID, AppID: in.AppID, Process: in.Process, InstanceIndex: in.Index,
		ReleaseVersion: in.Release, NodeID: in.NodeID, State: string(in.State), Port: in.Port,
		Reason: in.Reason, Restarts: in.Restarts, Isolation: string(in.Isolation), StartedAt: nullTime(in.StartedAt),
		CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt}
}

func (r instanceRow) api() *api.Instance {
	out := &api.Instance{ID: r.ID, AppID: r.AppID, Process: r.Process, Index: r.InstanceIndex,
		Release: r.ReleaseVersion, NodeID: r.NodeID, State: api.InstanceState(r.State), Port: r.Port,
		Reason: r.Reason, Restarts: r.Restarts, Isolation: api.Isolation(r.Isolation), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if r.StartedAt.Valid {
		out.StartedAt = r.StartedAt.Time.UTC()
	}
	return out
}

// nullTime stores a zero time as NULL.
func nullTime(t time.Time) sql.NullTime {
	if t.IsZero() {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: norm(t), Valid: true}
}

type routeRow struct {
	ID    string
	AppID string
	Host  string
	Path  string
}

func (routeRow) TableName() string { return "routes" }

func (r routeRow) api() *api.Route {
	return &api.Route{ID: r.ID, AppID: r.AppID, Host: r.Host, Path: r.Path}
}

type eventRow struct {
	Seq       int64 `gorm:"column:seq;->"` // assigned by the database
	ID        string
	AppID     string
	OrgID     string
	SpaceID   string
	Type      string
	Actor     string
	Message   string
	CreatedAt time.Time
}

func (eventRow) TableName() string { return "events" }

func (r eventRow) api() *api.Event {
	return &api.Event{ID: r.ID, AppID: r.AppID, OrgID: r.OrgID, SpaceID: r.SpaceID, Type: r.Type, Actor: r.Actor, Message: r.Message, Time: r.CreatedAt.UTC()}
}

// convert maps rows to api values with f.
func convert[R, T any](rows []R, f func(R) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = f(r)
	}
	return out
}
