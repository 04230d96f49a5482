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
  {{- if $v.stripe.existingSecret }}
  {{- $env = append $env (dict "name" "TOLLGATE_STRIPE_WEBHOOK_SECRET" "valueFrom" (dict "secretKeyRef" (dict "name" $v.stripe.existingSecret "key" $v.stripe.webhookSecretKey))) }}
  {{- $env = append $env (dict "name" "TOLLGATE_STRIPE_API_KEY" "valueFrom" (dict "secretKeyRef" (dict "name" $v.stripe.existingSecret "key" $v.stripe.apiKeyKey))) }}
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
{{- end }}

{{/* tollgate.volumes: the data emptyDir and the config ConfigMap, as list items. */}}
{{- define "tollgate.volumes" -}}
- name: tollgate-data
  emptyDir:
    sizeLimit: {{ .values.dataDir.sizeLimit }}
- name: tollgate-config
  configMap:
    name: {{ .fullname }}-config
{{- end }}
