# One image for every shadow-replay service: `docker run IMAGE gateway --config /config/shadow.yaml`.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages ./packages
COPY services ./services
RUN npm ci --no-audit --no-fund && npx tsc -b && npm prune --omit=dev

FROM node:20-slim
ENV NODE_ENV=production KAFKAJS_NO_PARTITIONER_WARNING=1
WORKDIR /app
COPY --from=build /app /app
USER node
ENTRYPOINT ["node", "services/cli/bin/shadow-replay.js"]
CMD ["--help"]
