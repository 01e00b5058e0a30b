// Package web is Strata's web console: html/template pages and embedded
// static assets served by the controller at / (docs/console.md).
//
// The console holds no business rules and no store. Every page and action
// calls the same service interfaces of package api that api/httpapi serves
// (api.AuthService, api.UserService, api.OrgService, api.AppService,
// api.LifecycleService, api.LogService) with the caller's principal and the
// page's org and space in ctx (api.WithPrincipal, api.WithTarget), so the
// controller's one authorization function decides what each user may see
// and do.
//
// Pages read without JavaScript and every action is a plain form with a
// CSRF token. A little JavaScript (static/console.js) makes the live parts
// live: the apps list and the instances table reload themselves and the
// logs page follows new lines over Server-Sent Events.
//
// A Console is safe for concurrent use by many requests.
package web
