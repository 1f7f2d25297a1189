{{/*
The chart name (nameOverride wins).
*/}}
{{- define "pve-gitops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: RELEASE-CHART, or RELEASE alone when it already contains the chart
name (fullnameOverride wins).
*/}}
{{- define "pve-gitops.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
helm.sh/chart: NAME-VERSION.
*/}}
{{- define "pve-gitops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of one cluster's Deployment and Service: FULLNAME-CLUSTER. Never truncated (two
clusters must not end up with one name): a name longer than 63 characters fails the render.
Call with (dict "root" $ "cluster" $c).
*/}}
{{- define "pve-gitops.clusterFullname" -}}
{{- $n := printf "%s-%s" (include "pve-gitops.fullname" .root) .cluster.name }}
{{- if gt (len $n) 63 }}
{{- fail (printf "clusters: the object name %q for cluster %q is longer than 63 characters; shorten the cluster name, the release name or set fullnameOverride" $n .cluster.name) }}
{{- end }}
{{- $n }}
{{- end }}

{{/*
Labels of the chart's objects that belong to no cluster.
*/}}
{{- define "pve-gitops.commonLabels" -}}
helm.sh/chart: {{ include "pve-gitops.chart" . }}
app.kubernetes.io/name: {{ include "pve-gitops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | toString | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pve-gitops
{{- end }}

{{/*
Selector labels of one cluster's pods. Call with (dict "root" $ "cluster" $c).
*/}}
{{- define "pve-gitops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pve-gitops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: controller
pve-gitops/cluster: {{ .cluster.name }}
{{- end }}

{{/*
All labels of one cluster's objects. Call with (dict "root" $ "cluster" $c).
*/}}
{{- define "pve-gitops.clusterLabels" -}}
{{ include "pve-gitops.commonLabels" .root }}
app.kubernetes.io/component: controller
pve-gitops/cluster: {{ .cluster.name }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "pve-gitops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pve-gitops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference.
*/}}
{{- define "pve-gitops.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
Checks across clusters that values.schema.json cannot express: unique names, the webhook's
TLS secret and every cluster's HMAC key when the webhook is on, ssh credentials for ssh
sources. Renders nothing; fails the render with a message naming the field.
*/}}
{{- define "pve-gitops.validate" -}}
{{- $seen := dict }}
{{- range $i, $c := .Values.clusters }}
{{- if hasKey $seen $c.name }}
{{- fail (printf "clusters[%d].name: duplicate cluster name %q (each cluster gets its own Deployment and Service)" $i $c.name) }}
{{- end }}
{{- $_ := set $seen $c.name true }}
{{- $git := $c.git | default dict }}
{{- if and $.Values.webhook.enabled (not $c.webhookSecret) }}
{{- fail (printf "clusters[%d].webhookSecret: required while webhook.enabled is true (the HMAC key the webhook sender signs with)" $i) }}
{{- end }}
{{- if and (hasPrefix "git+ssh://" $c.source.url) (not $git.sshSecret) }}
{{- fail (printf "clusters[%d].git.sshSecret: required for the ssh source %s (a Secret with the keys identity and known_hosts)" $i $c.source.url) }}
{{- end }}
{{- if and $git.sshSecret (not (hasPrefix "git+ssh://" $c.source.url)) }}
{{- fail (printf "clusters[%d].git.sshSecret: set, but the source %s is not git+ssh://" $i $c.source.url) }}
{{- end }}
{{- if and $git.httpsTokenSecret (not (hasPrefix "git+https://" $c.source.url)) }}
{{- fail (printf "clusters[%d].git.httpsTokenSecret: set, but the source %s is not git+https://" $i $c.source.url) }}
{{- end }}
{{- end }}
{{- if and .Values.webhook.enabled (not .Values.webhook.tlsSecretName) }}
{{- fail "webhook.tlsSecretName: required while webhook.enabled is true (the controller serves the webhook over TLS only)" }}
{{- end }}
{{- end }}
