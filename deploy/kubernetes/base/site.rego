# A custom policy module: *.rego files in --policy-dir add to the embedded policy (a file with
# the name of an embedded module replaces it). This one only publishes a flag under
# data.tollgate.site, readable through POST /v1/data/tollgate/site; edit the ConfigMap and the
# running sidecars recompile it without a restart.
package tollgate.site

maintenance := false
