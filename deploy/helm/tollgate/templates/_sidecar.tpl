{{/*
tollgate.sidecar renders tollgate's container as one list item. Used by this chart's
Deployment and meant for your own charts (add this chart as a dependency named "tollgate",
set tollgate.deployment.enabled=false and tollgate.podSelectorLabels to your pods' labels):

  spec:
    initContainers:
      {{- include "tollgate.sidecar" (dict "values" .Values.tollgate "fullname" (printf "%s-tollgate" .Release.Name) "appVersion" "v0.1.0" "sidecar" true) | nindent 6 }}
    volumes:
      {{- include "tollgate.volumes" (dict "values" .Values.tollgate "fullname" (printf "%s-tollgate" .Release.Name)) | nindent 6 }}

Arguments (a dict):
  values      tollgate's values (this chart's values.yaml shape)
  fullname    the tollgate release's full name: its ConfigMap is "<fullname>-config"
  appVersion  the image tag used when values.image.tag is empty
  sidecar     true: an initContainers entry with restartPolicy: Always (a native sidecar,
              Kubernetes >= 1.29) that the kubelet starts, and waits for (startupProbe), before
              the app's containers; false: a plain container (tollgate alone in the pod)
*/}}
{{- define "tollgate.sidecar" -}}
{{- $v := .values -}}
{{- if $v.nats.url }}
{{- if and $v.nats.existingSecret (not (include "tollgate.natsFiles" $v | fromYamlArray)) }}
{{- fail "nats.existingSecret is set: name at least one of nats.credsKey, nats.caKey, nats.certKey, nats.keyKey" }}
{{- end }}
{{- if and $v.nats.existingSecret (ne (empty $v.nats.certKey) (empty $v.nats.keyKey)) }}
{{- fail "nats.certKey and nats.keyKey go together (a client certificate and its key)" }}
{{- end }}
{{- end -}}
- name: tollgate
  image: "{{ $v.image.repository }}:{{ $v.image.tag | default .appVersion }}"
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if .sidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    - --data-dir={{ $v.dataDir.path }}
    {{- if $v.catalog }}
    - --catalog=/etc/tollgate/catalog.yaml
    {{- end }}
    - --policy-dir=/etc/tollgate
    - --webhook-listen=:{{ $v.ports.webhook }}
    - --ops-listen=:{{ $v.ports.ops }}
    - --shutdown-timeout={{ $v.config.shutdownTimeout }}
    - --decision-cache-ttl={{ $v.config.decisionCacheTTL }}
    - --log-level={{ $v.config.logLevel }}
    {{- with $v.extraArgs }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $env := list }}
  {{- $fleet := $v.nats.url }}
  {{- if $v.stripe.existingSecret }}
  {{- $env = append $env (dict "name" "TOLLGATE_STRIPE_WEBHOOK_SECRET" "valueFrom" (dict "secretKeyRef" (dict "name" $v.stripe.existingSecret "key" $v.stripe.webhookSecretKey))) }}
  {{- /* In fleet mode only the poller gets the API key: one poller serves the fleet. */}}
  {{- if or (not $fleet) $v.fleet.poller }}
  {{- $env = append $env (dict "name" "TOLLGATE_STRIPE_API_KEY" "valueFrom" (dict "secretKeyRef" (dict "name" $v.stripe.existingSecret "key" $v.stripe.apiKeyKey))) }}
  {{- end }}
  {{- end }}
  {{- if $fleet }}
  {{- $env = append $env (dict "name" "TOLLGATE_NATS_URL" "value" (toString $v.nats.url)) }}
  {{- $env = append $env (dict "name" "TOLLGATE_FLEET" "value" (toString $v.fleet.name)) }}
  {{- $env = append $env (dict "name" "TOLLGATE_FLEET_REPLICAS" "value" (toString $v.fleet.replicas)) }}
  {{- with $v.fleet.history }}
  {{- $env = append $env (dict "name" "TOLLGATE_FLEET_HISTORY" "value" (toString .)) }}
  {{- end }}
  {{- range (include "tollgate.natsFiles" $v | fromYamlArray) }}
  {{- $env = append $env (dict "name" .env "value" (printf "%s/%s" $v.nats.mountPath .path)) }}
  {{- end }}
  {{- end }}
  {{- with $v.config.stripePollInterval }}
  {{- $env = append $env (dict "name" "TOLLGATE_STRIPE_POLL_INTERVAL" "value" (toString .)) }}
  {{- end }}
  {{- with $v.config.reconcileInterval }}
  {{- $env = append $env (dict "name" "TOLLGATE_RECONCILE_INTERVAL" "value" (toString .)) }}
  {{- end }}
  {{- with $v.config.stripeAPIBase }}
  {{- $env = append $env (dict "name" "TOLLGATE_STRIPE_API_BASE" "value" (toString .)) }}
  {{- end }}
  {{- if (($v.resources).limits).memory }}
  {{- $env = append $env (dict "name" "GOMEMLIMIT" "valueFrom" (dict "resourceFieldRef" (dict "containerName" "tollgate" "resource" "limits.memory"))) }}
  {{- end }}
  {{- $env = concat $env $v.extraEnv }}
  {{- with $env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    # The decision API listens on 127.0.0.1:8181 (loopback, same pod only): not declared.
    - name: webhook
      containerPort: {{ $v.ports.webhook }}
      protocol: TCP
    - name: ops
      containerPort: {{ $v.ports.ops }}
      protocol: TCP
  {{- with $v.probes.startupProbe }}
  startupProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.probes.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.probes.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $v.securityContext | nindent 4 }}
  volumeMounts:
    - name: tollgate-data
      mountPath: {{ $v.dataDir.path }}
    # A directory mount, never subPath: ConfigMap updates propagate and the policy hot-reloads.
    - name: tollgate-config
      mountPath: /etc/tollgate
      readOnly: true
    {{- if and $v.nats.url (include "tollgate.natsFiles" $v | fromYamlArray) }}
    - name: tollgate-nats
      mountPath: {{ $v.nats.mountPath }}
      readOnly: true
    {{- end }}
{{- end }}

{{/*
tollgate.volumes: the data emptyDir, the config ConfigMap and, in fleet mode with NATS
credentials, their Secret, as list items. The data dir stays an emptyDir in fleet mode too: a
new pod becomes ready from the fleet's snapshot and log (docs/fleet.md).
*/}}
{{- define "tollgate.volumes" -}}
- name: tollgate-data
  emptyDir:
    sizeLimit: {{ .values.dataDir.sizeLimit }}
- name: tollgate-config
  configMap:
    name: {{ .fullname }}-config
{{- $files := include "tollgate.natsFiles" .values | fromYamlArray }}
{{- if and .values.nats.url $files }}
- name: tollgate-nats
  secret:
    secretName: {{ .values.nats.existingSecret }}
    defaultMode: 0440
    items:
      {{- range $files }}
      - key: {{ .key }}
        path: {{ .path }}
      {{- end }}
{{- end }}
{{- end }}

{{/*
tollgate.natsFiles: the NATS credential files taken from nats.existingSecret, as a YAML list of
{key, path, env}: the Secret's key, the file name under nats.mountPath, the variable naming it.
Empty without a Secret; a key left empty is not mounted.
*/}}
{{- define "tollgate.natsFiles" -}}
{{- $n := .nats }}
{{- $out := list }}
{{- if $n.existingSecret }}
{{- range $f := list (list $n.credsKey "nats.creds" "TOLLGATE_NATS_CREDS") (list $n.caKey "ca.crt" "TOLLGATE_NATS_CA") (list $n.certKey "tls.crt" "TOLLGATE_NATS_CERT") (list $n.keyKey "tls.key" "TOLLGATE_NATS_KEY") }}
{{- if index $f 0 }}
{{- $out = append $out (dict "key" (index $f 0) "path" (index $f 1) "env" (index $f 2)) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
